/*-------------------------------------------------------------------------
 * http.h
 *	  The HTTP service (bgworker/http/): what its files share.
 *
 * server.c runs the worker (daemon, loop, the route table); reads.c and
 * reader_pool.c answer reads in helper processes through the mailbox
 * (mailbox.h); events.c serves event streams; uploads.c and
 * stream_upload.c take uploads into the group commit; auth.c checks job
 * tokens; limits.c defends against abusive clients; metrics.c and
 * viewer.c serve /metrics and the log viewer.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_H
#define BUILDLOG_HTTP_H

#include "postgres.h"

#include "lib/ilist.h"
#include "lib/stringinfo.h"

#include "http/mailbox.h"
#include "ingest.h"
#include "shmem.h"
#include "token.h"
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

/* Step: GET /metrics into the HttpResponse arg (metrics.c). */
extern int	buildlog_http_metrics_step(BuildlogWorker *w, void *arg);

/*
 * Start a step's transaction and SPI for a read (what: its name in
 * pg_stat_activity); false, with the transaction over and a 503 in r, when
 * the extension is not installed.
 */
extern bool buildlog_http_begin_read(const char *what, HttpResponse *r);

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

/*
 * GET /jobs/{id}/bundle (viewer.c): the index line of the parts
 * (number, bytes, arrival, final), then their bytes (not with index_only).
 */
extern void buildlog_http_read_bundle(BuildlogWorker *w, const HttpReadArgs *args,
									  HttpResponse *r);

/*
 * A kind of work the helper processes run (work_kinds.c): its name; run,
 * in a helper, answers it into r; done, in the HTTP worker, takes the
 * answer of slot i for its owner (NULL: the waiting connection is resumed
 * to send it).
 */
typedef struct HttpWorkKind
{
	const char *name;
	void		(*run) (BuildlogWorker *w, const HttpReadArgs *args, int requester,
						HttpResponse *r);
	void		(*done) (HttpWorker *h, void *owner, int i);
} HttpWorkKind;

extern const HttpWorkKind *buildlog_http_work_kind(HttpReadKind kind);

/* Step: answer a read from the read path (reads.c). */
extern int	buildlog_http_read_step(BuildlogWorker *w, void *arg);

/*
 * Hand a read to the readers and suspend its connection (reader_pool.c);
 * false with a 503 in r when every read slot is taken, or with nothing in
 * r (status 0) when no reader runs: then the caller reads inline.
 */
extern bool buildlog_http_read_handoff(HttpWorker *h, struct MHD_Connection *conn,
									   const HttpReadArgs *args, void **state,
									   HttpResponse *r);

/*
 * Queue work for the helpers on behalf of owner (an event stream; NULL for
 * buildlog_http_read_handoff and the group commit); its slot index, or:
 */
#define HTTP_READ_NO_READER	(-1)	/* no reader runs: read inline */
#define HTTP_READ_NO_SLOT	(-2)	/* every read slot is taken */
extern int	buildlog_http_read_submit(HttpWorker *h, const HttpReadArgs *args, void *owner);

/*
 * The answers' temporary files (reader_pool.c): write all of data to a new
 * file (false with errno, nothing left), read len bytes of fd (false when
 * short).
 */
extern bool buildlog_http_write_file(const char *path, const char *data, size_t len);
extern bool buildlog_http_read_fd(int fd, char *buf, size_t len);

/* Does any HTTP reader run? */
extern bool buildlog_http_readers_running(void);

/* Is the read in slot i answered? */
extern bool buildlog_http_read_done(int i);

/*
 * Take the answer of read slot i (done): its head into *head, the slot
 * freed; an open descriptor of its body (removed already), or -1 when the
 * reader failed.
 */
extern int	buildlog_http_read_take(HttpWorker *h, int i, HttpReadSlot *head);

/* Give up read slot i (its client is gone): freed now or once answered. */
extern void buildlog_http_read_cancel(HttpWorker *h, int i);

/* An event stream's read is answered: feed it (events.c). */
extern void buildlog_http_events_read_done(HttpWorker *h, void *stream, int i);

/* Is this libmicrohttpd per-request pointer a read handed to the readers? */
extern bool buildlog_http_read_pending(HttpWorker *h, void *state);

/*
 * The access handler called again for a handed-off read: queue its answer
 * when the reader is done, or suspend again; returns an MHD_Result.
 */
extern int	buildlog_http_read_answer(HttpWorker *h, struct MHD_Connection *conn,
									  void **state);

/* The request of a handed-off read ended (client gone): free its slot later. */
extern void buildlog_http_read_abandon(HttpWorker *h, void *state);

/* Resume the connections whose reads are answered, free abandoned ones. */
extern void buildlog_http_reads_collect(HttpWorker *h);

/* At the HTTP worker's start: forget what a previous one left in the slots. */
extern void buildlog_http_reads_reset(HttpWorker *h);

/* The readers' lines of GET /metrics. */
extern void buildlog_http_reads_metrics(StringInfo buf);

/* Register the reader processes (buildlog.http_readers) with the service. */
extern void buildlog_http_readers_register(void);
extern PGDLLEXPORT void buildlog_http_reader_main(Datum arg);

/*
 * What libmicrohttpd's per-request pointer holds for an upload: each kind's
 * state starts with its kind.
 */
typedef enum HttpUploadKind
{
	HTTP_KIND_PARTS = 1,		/* POST/PUT parts, PUT log (uploads.c) */
	HTTP_KIND_STREAM,			/* POST /jobs/{id}/stream (stream_upload.c) */
	HTTP_KIND_STREAM_WAIT		/* a stream request waiting for the job's writes */
} HttpUploadKind;

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

/*
 * Is the request's token (Authorization: Bearer, or ?token= for reads) a
 * live token of job_id allowed to do need?  False with the refusal (401,
 * 403, 503) in r; *claims gets what the token says.  Tokens are never
 * logged.
 */
extern bool buildlog_http_authorize(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
									TokenScope need, HttpResponse *r, TokenClaims *claims);

/*
 * Did a revocation commit since the worker last read them?  Then
 * buildlog_http_revocations_refresh() reads them again (false when it
 * could not), and buildlog_http_revoked() tells whether an open request's
 * token is now revoked: open event streams and uploads end.
 */
extern bool buildlog_http_revocations_moved(void);
extern bool buildlog_http_revocations_refresh(HttpWorker *h);
extern bool buildlog_http_revoked(const TokenClaims *claims);

/* End the event streams and uploads whose token was revoked. */
extern void buildlog_http_events_revoke(HttpWorker *h);
extern void buildlog_http_stream_revoke(HttpWorker *h);

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

/*
 * Limits on clients (limits.c): connections and requests per client
 * address, deadlines for slow clients, the worker's open-file limit.
 */

/* Where a connection is, for its deadline. */
typedef enum HttpPhase
{
	HTTP_PHASE_BODY,			/* a bounded upload's body: as long again */
	HTTP_PHASE_OPEN,			/* answered, an event stream or a streaming upload: none */
	HTTP_PHASE_IDLE				/* the request is over: the next one's headers */
} HttpPhase;

/* Set up the limits (at start); the connection limit to give libmicrohttpd. */
extern int	buildlog_http_limits_init(HttpWorker *h);

#ifdef MHD_VERSION				/* after <microhttpd.h> */
/* libmicrohttpd's accept policy: refuse a client over its connection cap. */
extern enum MHD_Result buildlog_http_accept_policy(void *cls, const struct sockaddr *addr,
												   socklen_t addrlen);
#endif

/* A connection opened or closed (from the connection notifier). */
extern void buildlog_http_conn_opened(struct MHD_Connection *conn, void **socket_context);
extern void buildlog_http_conn_closed(void **socket_context);

/* The request on conn moved to phase (its deadline changes). */
extern void buildlog_http_request_phase(struct MHD_Connection *conn, HttpPhase phase);

/* Is the client within its request rate?  False with a 429 in r. */
extern bool buildlog_http_rate_check(struct MHD_Connection *conn, HttpResponse *r);

/*
 * Count an event stream of conn's client (*client: its key for the
 * release, 0 when not counted); false over buildlog.http_max_streams_per_client.
 */
extern bool buildlog_http_stream_admit(struct MHD_Connection *conn, uint32 *client);
extern void buildlog_http_stream_release(uint32 client);

/*
 * Count a log answer of bytes about to be sent on conn, and give it a
 * deadline (64 kB/s at least after buildlog.http_timeout); false (a 503 to
 * send instead) past buildlog.http_max_answer_bytes in flight.
 */
extern bool buildlog_http_answer_admit(struct MHD_Connection *conn, int64 bytes);

/* One more event stream refused for want of room (counted for /metrics). */
extern void buildlog_http_stream_refused(void);

/* Close the connections past their deadline (at most once a second). */
extern void buildlog_http_limits_sweep(void);

/* The limits' counters, in Prometheus' text format. */
extern void buildlog_http_limits_metrics(StringInfo buf);

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

/*
 * GET /jobs/{id} (the viewer page) and GET /viewer/{asset} (viewer.c):
 * true when url is one of those (r filled), false to route it elsewhere.
 */
extern bool buildlog_http_viewer(HttpWorker *h, const char *method, const char *url,
								 struct MHD_Connection *conn, HttpResponse *r);

/* Is buildlog.http_listen set (the service on)? */
extern bool buildlog_http_enabled(void);

/* Register the HTTP worker when buildlog.http_listen is set (_PG_init). */
extern void buildlog_http_register(void);
extern PGDLLEXPORT void buildlog_http_main(Datum arg);

#endif							/* BUILDLOG_HTTP_H */
