/*-------------------------------------------------------------------------
 * http.h
 *	  The HTTP service (bgworker/http/) as the rest of buildlog sees it:
 *	  whether it is on, and its worker and helper processes to register.
 *
 * Inside the wing, server.c runs the worker (daemon, loop, the route
 * table; server.h); reads.c answers reads and reader_pool.c runs them in
 * helper processes through the mailbox (mailbox.h), by the kinds of
 * work_kinds.c; events.c serves event streams; uploads.c and
 * stream_upload.c take uploads into the group commit; auth.c checks job
 * tokens; limits.c defends against abusive clients; metrics.c and
 * viewer.c serve /metrics and the log viewer.  Each has its header.
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

/* Register the reader processes (buildlog.http_readers) with the service. */
extern void buildlog_http_readers_register(void);
extern PGDLLEXPORT void buildlog_http_reader_main(Datum arg);

#endif							/* BUILDLOG_HTTP_H */
