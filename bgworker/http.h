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
#include "token.h"
#include "worker.h"

struct MHD_Daemon;
struct MHD_Connection;
struct GroupWrite;

/* A response being built (in the step context), sent after the step. */
typedef struct HttpResponse
{
	MemoryContext cxt;			/* where its strings live (the step context) */
	unsigned int status;
	const char *content_type;
	char	   *body;
	size_t		len;
	char	   *headers[8][2];	/* extra headers, name and value */
	int			nheaders;
} HttpResponse;

/* Add a header to the response being built. */
extern void buildlog_http_add_header(HttpResponse *r, const char *name, const char *value);

/* A body of known bytes with its type (body lives in r->cxt). */
extern void buildlog_http_set_body(HttpResponse *r, unsigned int status, const char *type,
								   char *body, size_t len);

/* An application/problem+json error (RFC 9457). */
extern void buildlog_http_problem(HttpResponse *r, unsigned int status, const char *title,
								  const char *detail);

/* What the HTTP worker keeps (http.c), shared with its event streams. */
typedef struct HttpWorker
{
	BuildlogWorker w;			/* the skeleton: slot, contexts, log limiter */
	HttpStats  *stats;
	struct MHD_Daemon *daemon;
	int			epoll_fd;
	dlist_head	streams;		/* open event streams (http_events.c) */
	struct HTAB *watched;		/* job id -> its streams (http_events.c) */
	char	   *token_key;		/* buildlog.http_token_key_file, NULL if unset */
	uint64		seen_wakeups;	/* live.h's counter when last refilled */
	TimestampTz next_heartbeat;
	dlist_head	group;			/* writes waiting for the group commit */
	int			ngroup;
	MemoryContext group_cxt;	/* their parts; reset after each group */
	dlist_head	uploads;		/* open POST /jobs/{id}/stream requests */
	struct HTAB *stream_jobs;	/* job id -> what its streams hold */
	uint64		stream_serial;
} HttpWorker;

/*
 * What libmicrohttpd's per-request pointer holds for an upload: each kind's
 * state starts with its kind.
 */
typedef enum HttpUploadKind
{
	HTTP_KIND_PARTS = 1,		/* POST/PUT parts, PUT log (http_ingest.c) */
	HTTP_KIND_STREAM			/* POST /jobs/{id}/stream (http_stream.c) */
} HttpUploadKind;

/*
 * One request's parts waiting for the group commit (http_ingest.c): all
 * for one job, in group_cxt.  done() runs after the group's outcome is
 * known, with status 0 (stored) or the HTTP status of the refusal or error.
 */
typedef struct GroupWrite
{
	dlist_node	node;
	int64		job_id;
	TokenScope	scope;
	int			n;
	Datum	   *numbers;
	Datum	   *contents;
	Datum	   *finals;
	int64		bytes;			/* content bytes */
	int64		replaced;		/* U+FFFD substitutions */
	void		(*done) (HttpWorker *h, struct GroupWrite *g);
	void	   *owner;			/* what done() answers */
	uint64		serial;			/* of a stream: which request it came from */
	int64		raw;			/* of a stream: raw body bytes covered */
	/* the outcome */
	unsigned int status;
	const char *title;
	const char *detail;
	int64		parts;			/* rows stored */
} GroupWrite;

/* A new write of n parts for job_id, queued for the next group commit. */
extern GroupWrite *buildlog_http_group_add(HttpWorker *h, int64 job_id, TokenScope scope, int n);

/*
 * Write every queued write through buildlog_ingest in one transaction
 * (refusing write tokens of jobs already final), then run each one's
 * done(); when the group's transaction fails, each write is retried alone
 * so only the bad one gets the error.
 */
extern void buildlog_http_group_commit(HttpWorker *h);

/* Set up the streaming ingest's bookkeeping (at start). */
extern void buildlog_http_stream_init(HttpWorker *h);

/*
 * POST (or PUT) /jobs/{id}/stream, first call: check the token, the type,
 * the length and the offset; false with the refusal in r, or true with
 * *state set.  HEAD answers the offset held (in r, true with *state NULL).
 */
extern bool buildlog_http_stream_begin(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, bool head, HttpResponse *r,
									   void **state);

/* A slice of a stream's body; false (r filled) when the stream is over. */
extern bool buildlog_http_stream_data(HttpWorker *h, void *state, const char *data,
									  size_t len, HttpResponse *r);

/* The body is complete: flush, wait for the commit, then answer in r (0: wait). */
extern void buildlog_http_stream_finish(HttpWorker *h, void *state, HttpResponse *r);

/* The request is over (complete or cut off): keep what arrived, free it. */
extern void buildlog_http_stream_free(HttpWorker *h, void *state, bool completed);

/* Queue the flushes that are due; returns ms until the next one is (-1: none). */
extern long buildlog_http_stream_timers(HttpWorker *h);

/* Set up the event streams' bookkeeping (at start). */
extern void buildlog_http_events_init(HttpWorker *h);

/*
 * GET /jobs/{id}/events: start a Server-Sent Events stream of the job's
 * parts after the client's cursor (Last-Event-ID or ?after=N) and queue its
 * response.  Runs its reads as a step; false when that failed (w.error).
 */
extern bool buildlog_http_events_start(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, unsigned int *status,
									   const char **error);

/*
 * Is the request's token (Authorization: Bearer, or ?token= for reads) a
 * live token of job_id allowed to do need?  False with the refusal (401,
 * 403, 503) in r; *scope gets the token's.  Tokens are never logged.
 */
extern bool buildlog_http_authorize(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
									TokenScope need, HttpResponse *r, TokenScope *scope);

/* Does the request say how long its body is (Content-Length or chunked)?  Else 411 in r. */
extern bool buildlog_http_has_length(struct MHD_Connection *conn, HttpResponse *r);

/*
 * The non-negative decimal at p (up to 2^63-1), *end after its digits; -1
 * when p does not start with a digit or the number is too large.
 */
extern int64 buildlog_http_parse_offset(const char *p, const char **end);

/* (Re)read the token key (at start and after a reload); says why not once. */
extern void buildlog_http_load_key(HttpWorker *h);

/* The number of buildlog_http_ingest_begin() for uploads that are not one part. */
#define HTTP_UPLOAD_BATCH	(-1)	/* POST /jobs/{id}/parts */
#define HTTP_UPLOAD_LOG		(-2)	/* PUT /jobs/{id}/log (admin) */

/*
 * POST /jobs/{id}/parts, PUT /jobs/{id}/parts/{number} or PUT
 * /jobs/{id}/log (number HTTP_UPLOAD_*), first
 * call (headers read): check the token, the type and the size; false with
 * the refusal in r, or true with *state set to read the body into.
 */
extern bool buildlog_http_ingest_begin(HttpWorker *h, struct MHD_Connection *conn,
									   int64 job_id, int32 number, HttpResponse *r,
									   void **state);

/* A slice of the body; false (r filled) when it grows past the limit. */
extern bool buildlog_http_ingest_data(HttpWorker *h, void *state, const char *data,
									  size_t len, HttpResponse *r);

/*
 * The whole body is in: write it through the ingest path and answer in r
 * (r->status stays 0 when a refusal was queued mid-body: nothing written).
 */
extern void buildlog_http_ingest_finish(HttpWorker *h, void *state, HttpResponse *r);

/* libmicrohttpd is done with the request: free its state. */
extern void buildlog_http_ingest_free(void *state);

/* The kind of an upload's state (HttpUploadKind). */
static inline HttpUploadKind
buildlog_http_upload_kind(void *state)
{
	return *(HttpUploadKind *) state;
}

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
