/*-------------------------------------------------------------------------
 * http.h
 *	  The HTTP service worker: reads of logs and parts over HTTP.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_H
#define BUILDLOG_HTTP_H

#include "postgres.h"

#include "lib/ilist.h"

#include "shmem.h"
#include "worker.h"

struct MHD_Daemon;
struct MHD_Connection;

/* What the HTTP worker keeps (http.c), shared with its event streams. */
typedef struct HttpWorker
{
	BuildlogWorker w;			/* the skeleton: slot, contexts, log limiter */
	HttpStats  *stats;
	struct MHD_Daemon *daemon;
	int			epoll_fd;
	dlist_head	streams;		/* open event streams (http_events.c) */
	uint64		seen_wakeups;	/* live.h's counter when last refilled */
	TimestampTz next_heartbeat;
} HttpWorker;

/*
 * GET /jobs/{id}/events: start a Server-Sent Events stream of the job's
 * parts after the client's cursor (Last-Event-ID or ?after=N) and queue its
 * response.  Runs its reads as a step; false when that failed (w.error).
 */
extern bool buildlog_http_events_start(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, unsigned int *status,
									   const char **error);

/*
 * After a waking commit (or when heartbeats are due): send every stream the
 * parts it has not seen yet, the end event of a complete log, keep-alive
 * comments; resumes the streams that got something.
 */
extern void buildlog_http_events_refill(HttpWorker *h);

/* Is buildlog.http_listen set (the service on)? */
extern bool buildlog_http_enabled(void);

/* Register the HTTP worker when buildlog.http_listen is set (_PG_init). */
extern void buildlog_http_register(void);
extern PGDLLEXPORT void buildlog_http_main(Datum arg);

#endif							/* BUILDLOG_HTTP_H */
