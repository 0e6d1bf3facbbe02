/*-------------------------------------------------------------------------
 * server.h
 *	  The HTTP worker's core (server.c), shared by every file of the wing:
 *	  the worker's state, a response being built and how it is sent, the
 *	  per-request pointer's kinds, and the request parsing helpers.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_SERVER_H
#define BUILDLOG_HTTP_SERVER_H

#include "postgres.h"

#include "lib/ilist.h"
#include "lib/stringinfo.h"

#include "http/mailbox.h"
#include "shmem.h"
#include "worker.h"

struct MHD_Daemon;
struct MHD_Connection;
struct MHD_Response;
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

/*
 * A read handed to a reader (reader_pool.c): its connection, suspended
 * until the answer is there; libmicrohttpd's per-request pointer points
 * here, one per shared read slot.
 */
typedef struct HttpPendingRead
{
	bool		busy;			/* a read of ours is in the slot */
	HttpReadKind kind;			/* what it is (work_kinds.c) */
	struct MHD_Connection *conn;	/* a GET waiting for its answer, or */
	void	   *owner;			/* who takes it (an event stream), or NULL */
	uint64		seq;
	bool		resumed;		/* the answer is there: resumed to send it */
} HttpPendingRead;

/* What the HTTP worker keeps (server.c), shared with its event streams. */
typedef struct HttpWorker
{
	BuildlogWorker w;			/* the skeleton: slot, contexts, log limiter */
	HttpStats  *stats;
	struct MHD_Daemon *daemon;
	int			epoll_fd;
	int			max_streams;	/* event streams at most: room kept for requests */
	dlist_head	streams;		/* open event streams (events.c) */
	struct HTAB *watched;		/* job id -> its streams (events.c) */
	char	   *token_key;		/* buildlog.http_token_key_file, NULL if unset */
	uint64		seen_wakeups;	/* live.h's counter when last refilled */
	TimestampTz next_heartbeat;
	HttpPendingRead reads[BUILDLOG_HTTP_READS]; /* by shared read slot */
	int			reads_pending;	/* connections waiting for a reader */
	int			reads_orphaned; /* slots left by gone clients, freed when done */
	dlist_head	group;			/* writes waiting for the group commit */
	int			ngroup;
	MemoryContext group_cxt;	/* their parts; reset after each group */
	dlist_head	uploads;		/* open POST /jobs/{id}/stream requests */
	struct HTAB *stream_jobs;	/* job id -> its stream writes not yet decided */
	dlist_head	stream_waits;	/* stream requests waiting for those */
	uint64		stream_serial;
	int			group_slot;		/* read slot of the group a reader writes, or -1 */
	struct GroupWrite **group_writes;	/* that group's writes */
	int			group_n;
	MemoryContext group_inflight_cxt;	/* where they live */
	int64		group_seq;		/* names the groups' files */
} HttpWorker;

/* Send a built response (common headers, counted); an MHD_Result. */
extern int	buildlog_http_send(HttpWorker *h, struct MHD_Connection *conn, HttpResponse *r);

/* Queue a libmicrohttpd response with the common headers, counted. */
extern int	buildlog_http_queue(HttpWorker *h, struct MHD_Connection *conn,
								struct MHD_Response *resp, unsigned int status, uint64 len);

/*
 * Start a step's transaction and SPI for a read (what: its name in
 * pg_stat_activity); false, with the transaction over and a 503 in r, when
 * the extension is not installed.
 */
extern bool buildlog_http_begin_read(const char *what, HttpResponse *r);

/*
 * What libmicrohttpd's per-request pointer holds for an upload: each kind's
 * state starts with its kind.
 */
typedef enum HttpUploadKind
{
	HTTP_KIND_PARTS = 1,		/* POST/PUT parts, PUT log (uploads.c) */
	HTTP_KIND_STREAM,			/* POST /jobs/{id}/stream (stream_upload.c) */
	HTTP_KIND_STREAM_WAIT,		/* a stream request waiting for the job's writes */
	HTTP_KIND_TRAVIS			/* travis-logs' uploads (travis_api.c) */
} HttpUploadKind;

/* The kind of an upload's state (HttpUploadKind). */
static inline HttpUploadKind
buildlog_http_upload_kind(void *state)
{
	return *(HttpUploadKind *) state;
}

/*
 * The non-negative decimal at p (up to 2^63-1), *end after its digits; -1
 * when p does not start with a digit or the number is too large.
 */
extern int64 buildlog_http_parse_offset(const char *p, const char **end);

/*
 * Parse a whole decimal integer (digits, a leading '-' for a negative one,
 * nothing else: no blanks, no '+') within min..max; false otherwise.
 */
extern bool buildlog_http_parse_int(const char *s, int64 min, int64 max, int64 *out);

/*
 * Is a Content-Type value of the media type type (case-insensitive, then
 * nothing or parameters after ';')?  Not a prefix match.
 */
extern bool buildlog_http_media_type_is(const char *value, const char *type);

/*
 * Parse "/jobs/{id}/<rest>": the job id (1 .. 2^63-1, digits only) and the
 * rest of the path; false when the path is not of that shape.
 */
extern bool buildlog_http_job_path(const char *url, int64 *job_id, const char **rest);

#endif							/* BUILDLOG_HTTP_SERVER_H */
