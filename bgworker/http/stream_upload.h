/*-------------------------------------------------------------------------
 * stream_upload.h
 *	  POST /jobs/{id}/stream: a runner's raw output, resumable (stream_upload.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_STREAM_UPLOAD_H
#define BUILDLOG_HTTP_STREAM_UPLOAD_H

#include "http/server.h"

/* Set up the streaming ingest's bookkeeping (at start). */
extern void buildlog_http_stream_init(HttpWorker *h);

/*
 * POST (or PUT) /jobs/{id}/stream, first call: check the token, the type,
 * the length and the offset; false with the refusal in r, or true with
 * *state set.  HEAD answers the offset held (in r, false).  While the job
 * has writes in flight, the request waits for them, suspended: true with
 * *state a wait, and it is called again with it when resumed.
 */
extern bool buildlog_http_stream_begin(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, bool head, HttpResponse *r,
									   void **state);

/*
 * A slice of a stream's body; *len is left as it is when the stream is
 * suspended for backpressure (the bytes come again once it is resumed),
 * else set to 0.  False (r filled) when the stream is over.
 */
extern bool buildlog_http_stream_data(HttpWorker *h, void *state, const char *data,
									  size_t *len, HttpResponse *r);

/* A stream request that waited for its job's writes is resumed or gone: free its wait. */
extern void buildlog_http_stream_wait_free(HttpWorker *h, void *state);

/* The body is complete: flush, wait for the commit, then answer in r (0: wait). */
extern void buildlog_http_stream_finish(HttpWorker *h, void *state, HttpResponse *r);

/* The request is over (complete or cut off): keep what arrived, free it. */
extern void buildlog_http_stream_free(HttpWorker *h, void *state, bool completed);

/* Queue the flushes that are due; returns ms until the next one is (-1: none). */
extern long buildlog_http_stream_timers(HttpWorker *h);

/* End the uploads whose token was revoked. */
extern void buildlog_http_stream_revoke(HttpWorker *h);

#endif							/* BUILDLOG_HTTP_STREAM_UPLOAD_H */
