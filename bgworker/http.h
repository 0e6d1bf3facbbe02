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
} HttpWorker;

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

/*
 * After a waking commit (or when heartbeats are due): send every stream the
 * parts it has not seen yet, the end event of a complete log, keep-alive
 * comments; resumes the streams that got something.
 */
extern void buildlog_http_events_refill(HttpWorker *h);

/*
 * Parse "/jobs/{id}/<rest>": the job id (1 .. 2^63-1, digits only) and the
 * rest of the path; false when the path is not of that shape.
 */
extern bool buildlog_http_job_path(const char *url, int64 *job_id, const char **rest);

/*
 * GET /jobs/{id} (the viewer page), GET /viewer/{asset} and the page's read
 * GET /jobs/{id}/bundle (http_viewer.c): true when url is one of those (r
 * filled), false to route it elsewhere.
 */
extern bool buildlog_http_viewer(HttpWorker *h, const char *method, const char *url,
								 struct MHD_Connection *conn, HttpResponse *r);

/* Is buildlog.http_listen set (the service on)? */
extern bool buildlog_http_enabled(void);

/* Register the HTTP worker when buildlog.http_listen is set (_PG_init). */
extern void buildlog_http_register(void);
extern PGDLLEXPORT void buildlog_http_main(Datum arg);

#endif							/* BUILDLOG_HTTP_H */
