/*-------------------------------------------------------------------------
 * events.h
 *	  Server-Sent Events streams of a job's parts (events.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_EVENTS_H
#define BUILDLOG_HTTP_EVENTS_H

#include "http/server.h"
#include "token.h"

/* An event stream's read is answered: feed it (events.c). */
extern void buildlog_http_events_read_done(HttpWorker *h, void *stream, int i);

/* Set up the event streams' bookkeeping (at start). */
extern void buildlog_http_events_init(HttpWorker *h);

/*
 * GET /jobs/{id}/events: start a Server-Sent Events stream of the job's
 * parts after the client's cursor (Last-Event-ID or ?after=N) and queue its
 * response.  Runs its reads as a step; false when that failed (w.error).
 */
extern bool buildlog_http_events_start(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, const TokenClaims *claims,
									   unsigned int *status, const char **error);

/* End the event streams whose token was revoked. */
extern void buildlog_http_events_revoke(HttpWorker *h);

/*
 * After a waking commit (or when heartbeats are due): send every stream the
 * parts it has not seen yet, the end event of a complete log, keep-alive
 * comments; resumes the streams that got something.
 */
extern void buildlog_http_events_refill(HttpWorker *h);

#endif							/* BUILDLOG_HTTP_EVENTS_H */
