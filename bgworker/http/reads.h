/*-------------------------------------------------------------------------
 * reads.h
 *	  Reads of the read path (reads.c), run by the helper processes:
 *	  /log, /parts and an event stream's parts, and the record format of
 *	  the latter's answer.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_READS_H
#define BUILDLOG_HTTP_READS_H

#include "http/server.h"

/* A read and where its answer goes: the argument of buildlog_http_read_step. */
typedef struct HttpReadCall
{
	const HttpReadArgs *args;
	HttpResponse *r;
} HttpReadCall;

/* What GET /jobs/{id}/log or /parts asks for; false with a 400 in r. */
extern bool buildlog_http_read_args(struct MHD_Connection *conn, HttpReadKind kind,
									int64 job_id, HttpReadArgs *args, HttpResponse *r);

/* The answer of a read whose step failed (in w): 503 when S3 did not answer, else 500. */
extern void buildlog_http_read_failed(BuildlogWorker *w, HttpResponse *r);

/*
 * The answer to an event stream's read (HTTP_READ_EVENTS): one record per
 * part, followed by its content as a JSON string (len bytes, escaped and
 * quoted by the reader); then possibly a record numbered
 * HTTP_EVENT_END (the log complete: an HttpEventEnd follows with its size
 * and SHA-256) or HTTP_EVENT_FINAL (an HttpEventEnd with only the final
 * part's number follows: the log is not complete in the reader's snapshot).
 */
#define HTTP_EVENT_END		PG_INT32_MIN
#define HTTP_EVENT_FINAL	(PG_INT32_MIN + 1)
typedef struct HttpEventRecord
{
	int32		number;			/* a part's (-1: the log's head), or
								 * HTTP_EVENT_END / _FINAL */
	uint32		len;			/* content bytes that follow */
	bool		final;
} HttpEventRecord;

typedef struct HttpEventEnd
{
	int32		final_number;
	int64		size;			/* HTTP_EVENT_END only */
	char		sha256[65];		/* HTTP_EVENT_END only, hex */
} HttpEventEnd;

/* Step: answer a read from the read path (reads.c). */
extern int	buildlog_http_read_step(BuildlogWorker *w, void *arg);

#endif							/* BUILDLOG_HTTP_READS_H */
