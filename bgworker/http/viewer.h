/*-------------------------------------------------------------------------
 * viewer.h
 *	  The log viewer's page, assets and bundle read (viewer.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_VIEWER_H
#define BUILDLOG_HTTP_VIEWER_H

#include "http/server.h"

/*
 * GET /jobs/{id}/bundle (viewer.c): the index line of the parts
 * (number, bytes, arrival, final), then their bytes (not with index_only).
 */
extern void buildlog_http_read_bundle(BuildlogWorker *w, const HttpReadArgs *args,
									  HttpResponse *r);

/*
 * GET /jobs/{id} (the viewer page) and GET /viewer/{asset} (viewer.c):
 * true when url is one of those (r filled), false to route it elsewhere.
 */
extern bool buildlog_http_viewer(HttpWorker *h, const char *method, const char *url,
								 struct MHD_Connection *conn, HttpResponse *r);

#endif							/* BUILDLOG_HTTP_VIEWER_H */
