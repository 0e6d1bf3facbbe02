/*-------------------------------------------------------------------------
 * uploads.h
 *	  Uploads of parts and logs (uploads.c) and the group commit that
 *	  writes every upload through the one ingest path.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_UPLOADS_H
#define BUILDLOG_HTTP_UPLOADS_H

#include "http/server.h"
#include "ingest.h"
#include "token.h"

/* The number of buildlog_http_ingest_begin() for uploads that are not one part. */
#define HTTP_UPLOAD_BATCH	(-1)	/* POST /jobs/{id}/parts */
#define HTTP_UPLOAD_LOG		(-2)	/* PUT /jobs/{id}/log (admin) */
#define HTTP_UPLOAD_SECRETS	(-3)	/* POST /jobs/{id}/secrets (admin) */

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

/* Does the request say how long its body is (Content-Length or chunked)?  Else 411 in r. */
extern bool buildlog_http_has_length(struct MHD_Connection *conn, HttpResponse *r);

/*
 * One request's parts waiting for the group commit (uploads.c): all
 * for one job, in group_cxt.  done() runs after the group's outcome is
 * known, with status 0 (stored) or the HTTP status of the refusal or error.
 */
typedef struct GroupWrite
{
	dlist_node	node;
	int64		job_id;
	TokenScope	scope;
	PartBatch	batch;			/* its parts (all of job_id), in group_cxt */
	int64		replaced;		/* U+FFFD substitutions */
	void		(*done) (HttpWorker *h, struct GroupWrite *g);
	void	   *owner;			/* what done() answers */
	uint64		serial;			/* of a stream: which request it came from */
	int64		raw;			/* of a stream: raw body bytes covered */
	int64		raw_end;		/* of a stream: its raw offset after this write */
	int32		next_number;	/* of a stream: the number after this write's */
	int32		mask_hold;		/* of a stream: the job's longest match after it */
	/* the outcome */
	unsigned int status;
	const char *title;
	const char *detail;
	int64		parts;			/* rows stored */
} GroupWrite;

/*
 * A new write of job_id's parts (the batch, made in h->group_cxt, is the
 * write's from now on), queued for the next group commit.
 */
extern GroupWrite *buildlog_http_group_add(HttpWorker *h, int64 job_id, TokenScope scope,
										   const PartBatch *parts);

/*
 * Write every queued write through buildlog_ingest in one transaction
 * (refusing write tokens of jobs already final), then run each one's
 * done(); when the group's transaction fails, each write is retried alone
 * so only the bad one gets the error.
 */
extern void buildlog_http_group_commit(HttpWorker *h);

/* The group a reader wrote (read slot i) is answered: answer its writes. */
extern void buildlog_http_group_done(HttpWorker *h, int i);

/*
 * In a reader: write the group of the HTTP worker requester (args: its
 * number and size) as buildlog_http_group_commit() does; each write's
 * outcome in r's body.
 */
extern void buildlog_http_group_write(BuildlogWorker *w, const HttpReadArgs *args, int requester,
									  HttpResponse *r);

#endif							/* BUILDLOG_HTTP_UPLOADS_H */
