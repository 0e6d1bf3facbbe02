/*-------------------------------------------------------------------------
 * http.h
 *	  The HTTP service worker: reads of logs and parts over HTTP.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_H
#define BUILDLOG_HTTP_H

#include "postgres.h"

/* Is buildlog.http_listen set (the service on)? */
extern bool buildlog_http_enabled(void);

/* Register the HTTP worker when buildlog.http_listen is set (_PG_init). */
extern void buildlog_http_register(void);
extern PGDLLEXPORT void buildlog_http_main(Datum arg);

#endif							/* BUILDLOG_HTTP_H */
