/*-------------------------------------------------------------------------
 * server.c
 *	  The HTTP service worker (buildlog.http_listen): reads of logs and
 *	  parts over HTTP, from the same read path as SQL.
 *
 * libmicrohttpd runs without a thread of its own (MHD_USE_EPOLL, external
 * polling): the worker waits on its latch and on libmicrohttpd's epoll
 * descriptor, then lets MHD_run() process what is ready.  Request handlers
 * therefore run on the worker's one thread, and every PostgreSQL call they
 * make is a step on the worker skeleton (its own transaction; an ERROR
 * becomes a 500 problem, never a longjmp through libmicrohttpd).  Reads of
 * logs and parts, which can be slow (a big log, a purged one fetched from
 * S3), go to the reader processes instead (reader_pool.c), so they never
 * hold up the event streams and the other requests.
 *
 * Endpoints:
 *	GET /healthz						"ok"
 *	GET /jobs/{id}/log					the log wherever it lives (fetch());
 *										Range: bytes=N- answers 206 from offset N;
 *										?deansi=1 strips ANSI escapes
 *	GET /jobs/{id}/parts?after=N		JSON: the parts numbered above N
 *	GET /jobs/{id}/events				Server-Sent Events, live (events.c)
 *	POST /jobs/{id}/parts				a batch of parts, with a write token (uploads.c)
 *	PUT /jobs/{id}/parts/{number}		one part, travis-logs' log_part body
 *	PUT /jobs/{id}/log					set_content() or removal, with an admin token
 *	POST /jobs/{id}/secrets				add_secrets(), with an admin token
 *	POST /jobs/{id}/stream				raw output in one chunked request, resumable
 *										(HEAD: the offset held; stream_upload.c)
 *	GET /metrics						Prometheus text: drain, scheduler, archive, HTTP, life cycle
 *	GET /jobs/{id}, /viewer/{asset}		the log viewer page (viewer.c)
 *	GET /jobs/{id}/bundle				the page's read: part sizes and times, then the bytes
 * Errors are application/problem+json.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "ansi.h"
#include "guc.h"
#include "http/auth.h"
#include "http/events.h"
#include "http/http.h"
#include "http/limits.h"
#include "http/metrics.h"
#include "http/reader_pool.h"
#include "http/reads.h"
#include "http/server.h"
#include "http/stream_upload.h"
#include "http/uploads.h"
#include "http/viewer.h"
#include "http/work_kinds.h"
#include "shmem.h"
#include "spiutil.h"
#include "worker.h"

#define IDLE_WAIT_MS		1000
#define MHD_LOG_LEN			512
#define LISTEN_RETRY_S		10	/* between attempts to listen */
/*
 * libmicrohttpd's memory pool per connection (its default is 32 kB): the
 * request headers must fit in it, and an idle event stream keeps it, so it
 * decides the memory of 10,000 open streams (see the fan-out benchmark).
 */
#define CONNECTION_MEMORY	(16 * 1024)

/* One request as the handlers see it. */
typedef struct HttpRequest
{
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	int64		job_id;
	HttpResponse *out;
	bool		queued;			/* the handler queued its own response */
	void	  **state;			/* libmicrohttpd's per-request pointer */
	bool		reading;		/* an upload: read its body before answering */
} HttpRequest;


/*
 * libmicrohttpd's own messages, kept by its logger callback (which must not
 * ereport) and logged after MHD_run() returns.
 */
static char mhd_log[MHD_LOG_LEN];
static bool mhd_log_pending = false;

/*
 * The per-request pointer of a request without a body between the first
 * call of the access handler and the second: libmicrohttpd 0.9.75 closes
 * the connection after a response queued on the first call, so answering
 * there would cost every client a new connection per request.
 */
static char headers_seen;

bool
buildlog_http_enabled(void)
{
	return buildlog_http_listen != NULL && buildlog_http_listen[0] != '\0';
}

/*
 * The listening socket, opened by the postmaster and inherited by every
 * start of the worker (as the postmaster keeps its own ports): while the
 * worker restarts, new connections wait in the socket's backlog and no
 * other process can take the address and collect the clients' tokens.
 * PGINVALID_SOCKET when the postmaster could not listen: the worker then
 * binds the address itself, retrying.
 */
static pgsocket postmaster_listen = PGINVALID_SOCKET;

static struct sockaddr_in listen_address(void);

/* Bind and listen on buildlog.http_listen in the postmaster; said once if not. */
static void
listen_in_postmaster(void)
{
	struct sockaddr_in addr = listen_address();
	int			on = 1;
	pgsocket	fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd == PGINVALID_SOCKET)
	{
		ereport(LOG, (errmsg("buildlog http: could not create a socket: %m")));
		return;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
		bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(fd, SOMAXCONN) != 0)
	{
		ereport(LOG,
				(errmsg("buildlog http: could not listen on %s: %m", buildlog_http_listen),
				 errdetail("The HTTP worker retries on its own until the address is free."),
				 errhint("Is another process listening there? buildlog.http_listen = '' turns the service off.")));
		close(fd);
		return;
	}
	postmaster_listen = fd;
}

/* Register the worker when buildlog.http_listen is set; from _PG_init. */
void
buildlog_http_register(void)
{
	if (!buildlog_http_enabled())
		return;
	listen_in_postmaster();
	buildlog_http_mailbox_init_hooks();
	/* from a consistent state on: a standby answers /healthz with "standby" */
	buildlog_worker_register_at("http", "buildlog_http_main", BgWorkerStart_ConsistentState);
	buildlog_http_readers_register();
}

/* libmicrohttpd's logger: keep the message for the worker's loop. */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	vsnprintf(mhd_log, sizeof(mhd_log), fmt, ap);
	mhd_log_pending = true;
}

/*
 * A request is over: free an upload's state (a stream cut off keeps what it
 * delivered, queued for the group commit), or leave a read the client gave
 * up on to be freed once its reader is done (a libmicrohttpd callback).
 */
static void
request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
				  enum MHD_RequestTerminationCode toe)
{
	HttpWorker *h = (HttpWorker *) cls;

	if (*con_cls == NULL || *con_cls == &headers_seen)
		;						/* no state */
	else if (buildlog_http_read_pending(h, *con_cls))
		buildlog_http_read_abandon(h, *con_cls);
	else if (buildlog_http_upload_kind(*con_cls) == HTTP_KIND_STREAM)
		buildlog_http_stream_free(h, *con_cls, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	else if (buildlog_http_upload_kind(*con_cls) == HTTP_KIND_STREAM_WAIT)
		buildlog_http_stream_wait_free(h, *con_cls);
	else
		buildlog_http_ingest_free(*con_cls);
	*con_cls = NULL;
	buildlog_http_request_phase(connection, HTTP_PHASE_IDLE);
}

/* Count open connections, per client too (a libmicrohttpd callback: no ERROR). */
static void
notify_connection(void *cls, struct MHD_Connection *connection,
				  void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	HttpStats  *stats = (HttpStats *) cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		pg_atomic_fetch_add_u64(&stats->connections, 1);
		buildlog_http_conn_opened(connection, socket_context);
	}
	else
	{
		pg_atomic_fetch_sub_u64(&stats->connections, 1);
		buildlog_http_conn_closed(socket_context);
	}
}

void
buildlog_http_add_header(HttpResponse *r, const char *name, const char *value)
{
	if (r->nheaders >= lengthof(r->headers))
		return;
	r->headers[r->nheaders][0] = MemoryContextStrdup(r->cxt, name);
	r->headers[r->nheaders][1] = MemoryContextStrdup(r->cxt, value);
	r->nheaders++;
}

void
buildlog_http_set_body(HttpResponse *r, unsigned int status, const char *type, char *body, size_t len)
{
	r->status = status;
	r->content_type = type;
	r->body = body;
	r->len = len;
}

void
buildlog_http_problem(HttpResponse *r, unsigned int status, const char *title, const char *detail)
{
	StringInfoData buf;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"type\":\"about:blank\",\"title\":");
	escape_json(&buf, title);
	appendStringInfo(&buf, ",\"status\":%u,\"detail\":", status);
	escape_json(&buf, detail);
	appendStringInfoString(&buf, "}\n");
	MemoryContextSwitchTo(old);
	buildlog_http_set_body(r, status, "application/problem+json", buf.data, buf.len);
}

bool
buildlog_http_job_path(const char *url, int64 *job_id, const char **rest)
{
	const char *p = url + strlen("/jobs/");
	int64		id = 0;

	if (strncmp(url, "/jobs/", 6) != 0 || !isdigit((unsigned char) *p))
		return false;
	for (; isdigit((unsigned char) *p); p++)
	{
		if (id > (PG_INT64_MAX - (*p - '0')) / 10)
			return false;
		id = id * 10 + (*p - '0');
	}
	if (id <= 0 || *p != '/')
		return false;
	*job_id = id;
	*rest = p + 1;
	return true;
}

/* A part number in a path: 0 .. 2147483647 or "last"; -1 if neither. */
static int32
parse_part_number(const char *p)
{
	int64		n = 0;

	if (strcmp(p, "last") == 0)
		return PG_INT32_MAX;
	if (!isdigit((unsigned char) *p))
		return -1;
	for (; isdigit((unsigned char) *p); p++)
	{
		n = n * 10 + (*p - '0');
		if (n > PG_INT32_MAX)
			return -1;
	}
	return *p == '\0' ? (int32) n : -1;
}

bool
buildlog_http_parse_int(const char *s, int64 min, int64 max, int64 *out)
{
	const char *end = "";
	bool		negative = (s[0] == '-');
	int64		n = buildlog_http_parse_offset(s + (negative ? 1 : 0), &end);

	if (n < 0 || *end != '\0')
		return false;
	n = negative ? -n : n;
	if (n < min || n > max)
		return false;
	*out = n;
	return true;
}

bool
buildlog_http_media_type_is(const char *value, const char *type)
{
	size_t		n = strlen(type);

	if (value == NULL)
		return false;
	while (*value == ' ' || *value == '\t')
		value++;
	if (pg_strncasecmp(value, type, n) != 0)
		return false;
	value += n;
	while (*value == ' ' || *value == '\t')
		value++;
	return *value == '\0' || *value == ';';
}

/* libmicrohttpd's argument iterator: note an argument whose value holds a NUL. */
static enum MHD_Result
note_nul(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
		 const char *value, size_t value_size)
{
	if (strlen(key) != key_size || (value != NULL && strlen(value) != value_size))
	{
		*(bool *) cls = true;
		return MHD_NO;
	}
	return MHD_YES;
}

/*
 * Does any query argument hold a NUL (%00)?  C strings would read it cut
 * short ("5%00" as 5): such a request is refused, not guessed at.
 */
static bool
arguments_ok(struct MHD_Connection *conn, HttpResponse *r)
{
	bool		nul = false;

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, note_nul, &nul);
	if (!nul)
		return true;
	buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
						  "A query argument holds a NUL byte (%00).");
	return false;
}

int64
buildlog_http_parse_offset(const char *p, const char **end)
{
	int64		n = 0;

	if (!isdigit((unsigned char) *p))
		return -1;
	for (; isdigit((unsigned char) *p); p++)
	{
		if (n > (PG_INT64_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	*end = p;
	return n;
}

bool
buildlog_http_begin_read(const char *what, HttpResponse *r)
{
	buildlog_worker_begin_spi(what);
	if (OidIsValid(get_extension_oid("buildlog", true)))
		return true;
	buildlog_worker_commit_spi();
	buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
			"The extension buildlog is not installed in the worker's database.");
	return false;
}

/* Step: GET /metrics (metrics.c). */
static int
get_metrics(BuildlogWorker *w, void *arg)
{
	return buildlog_http_metrics_step(w, ((HttpRequest *) arg)->out);
}

/*
 * GET /jobs/{id}/log or /parts: handed to a reader (the connection waits,
 * suspended), or read here when no reader runs (buildlog.http_readers = 0).
 */
static void
serve_read(HttpWorker *h, HttpRequest *req, HttpReadKind kind)
{
	HttpResponse *r = req->out;
	HttpReadArgs args;
	HttpReadCall call = {&args, r};
	char		what[64];

	if (!buildlog_http_read_args(req->conn, kind, req->job_id, &args, r))
		return;
	if (buildlog_http_read_handoff(h, req->conn, &args, req->state, r))
	{
		req->queued = true;
		return;
	}
	if (r->status != 0)
		return;					/* every read slot taken: 503 */
	snprintf(what, sizeof(what), "%s /jobs/" INT64_FORMAT "/%s", req->method, req->job_id,
			 buildlog_http_work_kind(kind)->name);
	if (buildlog_worker_run_step(&h->w, what, buildlog_http_read_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_read_failed(&h->w, r);
	}
}

/* 405 with the methods the resource allows. */
static void
method_not_allowed(HttpResponse *r, const char *method, const char *allow)
{
	buildlog_http_add_header(r, "Allow", allow);
	buildlog_http_problem(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed",
						  psprintf("%s is not allowed here.", method));
}

/*
 * GET /healthz: "ok" (200) on the primary; "standby" (503) while this node
 * is in recovery, and "read-only" (503) while writes are fenced off
 * (default_transaction_read_only, as pg_auto_failover sets it on a node it
 * promotes until the old primary is surely demoted), so a proxy sends
 * clients to the node that takes writes.
 */
static void
route_healthz(HttpWorker *h, HttpRequest *req, int arg)
{
	const char *role = RecoveryInProgress() ? "standby" : DefaultXactReadOnly ? "read-only" : "primary";
	bool		ok = strcmp(role, "primary") == 0;
	char	   *body = MemoryContextAlloc(req->out->cxt, 16);

	snprintf(body, 16, "%s\n", ok ? "ok" : role);
	buildlog_http_add_header(req->out, "X-Buildlog-Role", role);
	buildlog_http_set_body(req->out, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
						   "text/plain; charset=utf-8", body, strlen(body));
}

/* GET /metrics: a step of the worker (metrics.c). */
static void
route_metrics(HttpWorker *h, HttpRequest *req, int arg)
{
	char		what[64];

	snprintf(what, sizeof(what), "%s /metrics", req->method);
	if (buildlog_worker_run_step(&h->w, what, get_metrics, req) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		req->out->nheaders = 0;
		buildlog_http_problem(req->out, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  h->w.error_message);
	}
}

/* A read of the readers (arg: its HttpReadKind), after the read token when reads need one. */
static void
route_read(HttpWorker *h, HttpRequest *req, int arg)
{
	TokenClaims claims;

	if (!buildlog_http_read_tokens ||
		buildlog_http_authorize(h, req->conn, req->job_id, TOKEN_READ, req->out, &claims))
		serve_read(h, req, (HttpReadKind) arg);
}

/* An upload of parts (arg: HTTP_UPLOAD_BATCH / _LOG, or a part's number): its body is read first. */
static void
route_upload(HttpWorker *h, HttpRequest *req, int arg)
{
	if (buildlog_http_ingest_begin(h, req->conn, req->job_id, arg, req->out, req->state))
		req->reading = true;
}

/* PUT /jobs/{id}/parts/{number}: one part (number, or "last"). */
static void
route_put_part(HttpWorker *h, HttpRequest *req, int arg)
{
	const char *rest = "";
	int64		job_id;
	int32		number;

	(void) buildlog_http_job_path(req->url, &job_id, &rest);
	number = parse_part_number(rest + 6);
	if (number < 0)
		buildlog_http_problem(req->out, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "The part number must be 0 .. 2147483647 or \"last\".");
	else
		route_upload(h, req, number);
}

/* POST or PUT /jobs/{id}/stream, or HEAD for its offset (stream_upload.c). */
static void
route_stream(HttpWorker *h, HttpRequest *req, int arg)
{
	bool		head = strcmp(req->method, MHD_HTTP_METHOD_HEAD) == 0;

	if (buildlog_http_stream_begin(h, req->conn, req->job_id, head, req->out, req->state))
		req->reading = true;
}

/* GET /jobs/{id}/events: an event stream (events.c), queued by itself. */
static void
route_events(HttpWorker *h, HttpRequest *req, int arg)
{
	HttpResponse *r = req->out;
	unsigned int status;
	const char *error = NULL;
	TokenClaims claims;

	if (buildlog_http_read_tokens &&
		!buildlog_http_authorize(h, req->conn, req->job_id, TOKEN_READ, r, &claims))
		return;
	if (!buildlog_http_events_start(h, req->conn, req->job_id,
									buildlog_http_read_tokens ? &claims : NULL, &status, &error))
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  h->w.error_message);
	}
	else if (status == 0)
		req->queued = true;
	else
	{
		if (status != MHD_HTTP_BAD_REQUEST)
			buildlog_http_add_header(r, "Retry-After", "5");
		buildlog_http_problem(r, status,
							  status == MHD_HTTP_BAD_REQUEST ? "Bad Request" :
							  status == MHD_HTTP_TOO_MANY_REQUESTS ? "Too Many Requests" : "Service Unavailable",
							  error);
	}
}

/*
 * The routes: a path ("/..." whole, else what follows /jobs/{id}/; a path
 * ending in '/' is a prefix), a method (GET also answers HEAD unless
 * no_head), its handler and the handler's argument.  A path with no route
 * for the method answers 405 listing the methods it has.  The viewer's
 * page and assets are served by viewer.c before these.
 */
typedef struct Route
{
	const char *path;
	const char *method;
	bool		no_head;
	void		(*handle) (HttpWorker *h, HttpRequest *req, int arg);
	int			arg;			/* what the handler is given */
} Route;

static const Route routes[] = {
	{"/healthz", "GET", false, route_healthz, 0},
	{"/metrics", "GET", false, route_metrics, 0},
	{"log", "GET", false, route_read, HTTP_READ_LOG},
	{"log", "PUT", false, route_upload, HTTP_UPLOAD_LOG},
	{"secrets", "POST", false, route_upload, HTTP_UPLOAD_SECRETS},
	{"parts", "GET", false, route_read, HTTP_READ_PARTS},
	{"parts", "POST", false, route_upload, HTTP_UPLOAD_BATCH},
	{"parts/", "PUT", false, route_put_part, 0},
	{"bundle", "GET", false, route_read, HTTP_READ_BUNDLE},
	{"events", "GET", true, route_events, 0},
	{"stream", "HEAD", false, route_stream, 0},
	{"stream", "POST", false, route_stream, 0},
	{"stream", "PUT", false, route_stream, 0},
	{NULL, NULL, false, NULL, 0}
};

/* Does a route's path match the request's (the whole path, or what follows /jobs/{id}/)? */
static bool
route_path_matches(const Route *route, const char *url, bool job, const char *rest)
{
	size_t		n = strlen(route->path);

	if (route->path[0] == '/')
		return strcmp(url, route->path) == 0;
	if (!job)
		return false;
	return route->path[n - 1] == '/' ? strncmp(rest, route->path, n) == 0 : strcmp(rest, route->path) == 0;
}

/* Does the route take the method (GET also HEAD, unless no_head)? */
static bool
route_method_matches(const Route *route, const char *method)
{
	return strcmp(method, route->method) == 0 ||
		(!route->no_head && strcmp(route->method, MHD_HTTP_METHOD_GET) == 0 &&
		 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

/* Route a request through the table: its handler, a 405 or a 404. */
static void
route(HttpWorker *h, HttpRequest *req)
{
	const char *rest = "";
	bool		job = buildlog_http_job_path(req->url, &req->job_id, &rest);
	bool		known = false;
	StringInfoData allow;

	if (RecoveryInProgress() && strcmp(req->url, "/healthz") != 0 && strcmp(req->url, "/metrics") != 0)
	{
		/* a standby: nothing is written here and no commit wakes a stream */
		buildlog_http_add_header(req->out, "Retry-After", "5");
		buildlog_http_problem(req->out, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  "This node is a standby (in recovery): the primary serves logs and uploads. Use the proxy's address, which follows the primary.");
		return;
	}
	if (buildlog_http_viewer(h, req->method, req->url, req->conn, req->out))
		return;
	for (const Route *route = routes; route->path != NULL; route++)
	{
		if (!route_path_matches(route, req->url, job, rest))
			continue;
		known = true;
		if (route_method_matches(route, req->method))
		{
			route->handle(h, req, route->arg);
			return;
		}
	}
	if (!known)
	{
		buildlog_http_problem(req->out, MHD_HTTP_NOT_FOUND, "Not Found",
							  psprintf("No resource at %s.", req->url));
		return;
	}
	initStringInfo(&allow);
	for (const Route *route = routes; route->path != NULL; route++)
		if (route_path_matches(route, req->url, job, rest))
			appendStringInfo(&allow, "%s%s%s", allow.len > 0 ? ", " : "", route->method,
							 !route->no_head && strcmp(route->method, MHD_HTTP_METHOD_GET) == 0 ? ", HEAD" : "");
	method_not_allowed(req->out, req->method, allow.data);
}

int
buildlog_http_queue(HttpWorker *h, struct MHD_Connection *conn, struct MHD_Response *resp,
					unsigned int status, uint64 len)
{
	enum MHD_Result ret;

	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ret = MHD_queue_response(conn, status, resp);
	if (status < 400)
		pg_atomic_fetch_add_u64(&h->stats->responses_2xx, 1);
	else if (status < 500)
		pg_atomic_fetch_add_u64(&h->stats->responses_4xx, 1);
	else
		pg_atomic_fetch_add_u64(&h->stats->responses_5xx, 1);
	pg_atomic_fetch_add_u64(&h->stats->bytes_sent, len);
	return ret;
}

int
buildlog_http_send(HttpWorker *h, struct MHD_Connection *conn, HttpResponse *r)
{
	struct MHD_Response *resp;
	int			ret;

	resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;			/* out of memory: libmicrohttpd closes it */
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	for (int i = 0; i < r->nheaders; i++)
		MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
	ret = buildlog_http_queue(h, conn, resp, r->status, r->len);
	MHD_destroy_response(resp);
	return ret;
}

/* Does the request come without a body (answered on the second call)? */
static bool
bodiless(struct MHD_Connection *conn, const char *method)
{
	return (strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
			strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) &&
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) == NULL &&
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) == NULL;
}

/* How a request frames its body, as its headers say. */
typedef struct Framing
{
	int			lengths;		/* Content-Length headers */
	bool		lengths_differ;
	bool		length_bad;		/* one that is not digits only */
	const char *length;
	int			encodings;		/* Transfer-Encoding headers */
	bool		encoding_bad;	/* one other than "chunked" */
} Framing;

/* libmicrohttpd's header iterator: note each framing header (no ERROR here). */
static enum MHD_Result
note_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	Framing    *f = (Framing *) cls;

	if (pg_strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
	{
		if (f->lengths++ > 0 && strcmp(f->length, value) != 0)
			f->lengths_differ = true;
		f->length = value;
		if (value[0] == '\0' || strspn(value, "0123456789") != strlen(value))
			f->length_bad = true;
	}
	else if (pg_strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
	{
		f->encodings++;
		if (pg_strcasecmp(value, "chunked") != 0)
			f->encoding_bad = true;
	}
	return MHD_YES;
}

/*
 * Is the body framed one way only (RFC 9112, 6.3)?  Two different
 * Content-Length values, Content-Length beside Transfer-Encoding, or a
 * transfer coding other than chunked could be read differently by a proxy
 * in front (request smuggling): false with a 400 in r, the connection then
 * closed.
 */
static bool
framing_ok(struct MHD_Connection *conn, HttpResponse *r)
{
	Framing		f;
	const char *why = NULL;

	memset(&f, 0, sizeof(f));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, note_framing, &f);
	if (f.lengths_differ)
		why = "The request has Content-Length headers with different values.";
	else if (f.length_bad)
		why = "Content-Length must be a decimal number of bytes.";
	else if (f.lengths > 0 && f.encodings > 0)
		why = "The request has both Content-Length and Transfer-Encoding.";
	else if (f.encodings > 1 || f.encoding_bad)
		why = "The only transfer coding accepted is a single \"chunked\".";
	if (why == NULL)
		return true;
	buildlog_http_add_header(r, "Connection", "close");
	buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request", why);
	return false;
}

/* A streaming upload (POST /jobs/{id}/stream): open while the job runs. */
static bool
is_stream_upload(const char *url)
{
	size_t		n = strlen(url);

	return n > 7 && strcmp(url + n - 7, "/stream") == 0;
}

/*
 * libmicrohttpd's access handler: called first with the headers, then with
 * each slice of a body, then once more at its end.  Requests without a body
 * are routed on the second call (keep-alive), uploads on the first (their
 * refusals come before the body is read).
 */
static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version, const char *upload_data,
			   size_t *upload_data_size, void **con_cls)
{
	HttpWorker *h = (HttpWorker *) cls;
	HttpResponse out;
	HttpRequest req;
	bool		waited;

	memset(&out, 0, sizeof(out));
	memset(&req, 0, sizeof(req));
	out.cxt = h->w.step_cxt;
	/* a body framed two ways: refused before any of it is read */
	if (*con_cls == NULL && !framing_ok(conn, &out))
	{
		pg_atomic_fetch_add_u64(&h->stats->requests, 1);
		return (enum MHD_Result) buildlog_http_send(h, conn, &out);
	}
	if (*con_cls == NULL && bodiless(conn, method))
	{
		*con_cls = &headers_seen;
		return MHD_YES;
	}
	if (*con_cls == &headers_seen)
		*con_cls = NULL;		/* the second call: route it now */
	else if (*con_cls != NULL && buildlog_http_read_pending(h, *con_cls))
		return (enum MHD_Result) buildlog_http_read_answer(h, conn, con_cls);
	/* a stream request resumed after waiting for its job's writes: routed again */
	waited = *con_cls != NULL && buildlog_http_upload_kind(*con_cls) == HTTP_KIND_STREAM_WAIT;
	if (!waited && *con_cls != NULL && buildlog_http_upload_kind(*con_cls) == HTTP_KIND_STREAM)
	{
		/* a stream's body, slice by slice, then the answer after its commit */
		if (*upload_data_size > 0)
		{
			bool		ok = buildlog_http_stream_data(h, *con_cls, upload_data,
													   upload_data_size, &out);

			return ok ? MHD_YES : (enum MHD_Result) buildlog_http_send(h, conn, &out);
		}
		buildlog_http_stream_finish(h, *con_cls, &out);
		return out.status == 0 ? MHD_YES : (enum MHD_Result) buildlog_http_send(h, conn, &out);
	}
	if (!waited && *con_cls != NULL)
	{
		/* an upload's body, slice by slice, then the answer */
		if (*upload_data_size > 0)
		{
			bool		ok = buildlog_http_ingest_data(h, *con_cls, upload_data,
													   *upload_data_size, &out);

			*upload_data_size = 0;
			return ok ? MHD_YES : (enum MHD_Result) buildlog_http_send(h, conn, &out);
		}
		buildlog_http_ingest_finish(h, *con_cls, &out);
		/* refused mid-body (answer queued already), or waiting for the group */
		return out.status == 0 ? MHD_YES : (enum MHD_Result) buildlog_http_send(h, conn, &out);
	}
	req.conn = conn;
	req.method = method;
	req.url = url;
	req.out = &out;
	req.state = con_cls;
	if (!waited)
	{
		pg_atomic_fetch_add_u64(&h->stats->requests, 1);
		if (!buildlog_http_rate_check(conn, &out) || !arguments_ok(conn, &out))
			return (enum MHD_Result) buildlog_http_send(h, conn, &out);
	}
	route(h, &req);
	if (waited && req.reading && *upload_data_size > 0 &&
		buildlog_http_upload_kind(*con_cls) == HTTP_KIND_STREAM)
	{
		/* body bytes that came while it waited: take them now */
		buildlog_http_request_phase(conn, HTTP_PHASE_OPEN);
		if (!buildlog_http_stream_data(h, *con_cls, upload_data, upload_data_size, &out))
			return (enum MHD_Result) buildlog_http_send(h, conn, &out);
		return MHD_YES;
	}
	/* a bounded body has a deadline; streams and answers have none */
	buildlog_http_request_phase(conn, req.reading && !is_stream_upload(url) ?
								HTTP_PHASE_BODY : HTTP_PHASE_OPEN);
	if (req.queued || req.reading)
		return MHD_YES;
	if (out.status == 0)
		buildlog_http_problem(&out, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
				"The request produced no response.");
	return (enum MHD_Result) buildlog_http_send(h, conn, &out);
}

/* The listen address of buildlog.http_listen (checked by its hook). */
static struct sockaddr_in
listen_address(void)
{
	struct sockaddr_in addr;
	char	   *value = pstrdup(buildlog_http_listen);
	char	   *colon = strrchr(value, ':');

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	*colon = '\0';
	if (inet_pton(AF_INET, value, &addr.sin_addr) != 1)
		elog(ERROR, "invalid buildlog.http_listen \"%s\"", buildlog_http_listen);
	addr.sin_port = htons((uint16) atoi(colon + 1));
	pfree(value);
	return addr;
}

/*
 * Start libmicrohttpd on buildlog.http_listen, without a thread of its own.
 * False when it cannot listen (the address taken, say): said once, retried.
 */
static bool
start_daemon(HttpWorker *h)
{
	struct sockaddr_in addr = listen_address();
	const union MHD_DaemonInfo *info;
	int			limit = buildlog_http_limits_init(h);
	/* the postmaster's socket, else the address to bind */
	struct MHD_OptionItem where[] = {
		postmaster_listen != PGINVALID_SOCKET ?
		(struct MHD_OptionItem) {MHD_OPTION_LISTEN_SOCKET, postmaster_listen, NULL} :
		(struct MHD_OptionItem) {MHD_OPTION_SOCK_ADDR, 0, &addr},
		{MHD_OPTION_END, 0, NULL}
	};

	h->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME,
								 ntohs(addr.sin_port), buildlog_http_accept_policy, NULL,
								 handle_request, h,
								 MHD_OPTION_ARRAY, where,
								 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) limit,
								 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
								 MHD_OPTION_CONNECTION_TIMEOUT,
								 (unsigned int) buildlog_http_timeout_s,
								 MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h->stats,
								 MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
								 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
								 MHD_OPTION_END);
	if (h->daemon == NULL)
	{
		char		msg[BUILDLOG_TEXT_LEN];

		snprintf(msg, sizeof(msg),
				 "could not listen on %s (%s); retrying every %d s (is another process listening there? buildlog.http_listen = '' turns the service off)",
				 buildlog_http_listen, mhd_log_pending ? mhd_log : "libmicrohttpd did not start",
				 LISTEN_RETRY_S);
		mhd_log_pending = false;
		buildlog_worker_problem(&h->w, WARNING, msg);
		return false;
	}
	/* streams never take the last tenth of the connections (at least 8) */
	h->max_streams = Max(limit - Max(8, limit / 10), 1);
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	h->epoll_fd = info->epoll_fd;
	mhd_log_pending = false;
	ereport(LOG, (errmsg("%s: listening on http://%s", h->w.name, buildlog_http_listen)));
	return true;
}

/*
 * Wait for the latch, a connection's activity, libmicrohttpd's timeout or
 * the next stream flush (flush_ms, -1: none); not at all while writes wait
 * for the group commit.
 */
static void
wait_for_events(HttpWorker *h, long flush_ms)
{
	MHD_UNSIGNED_LONG_LONG mhd_timeout;
	long		timeout = IDLE_WAIT_MS;
	int			rc;

	if (MHD_get_timeout(h->daemon, &mhd_timeout) == MHD_YES)
		timeout = (long) Min(mhd_timeout, (MHD_UNSIGNED_LONG_LONG) IDLE_WAIT_MS);
	if (flush_ms >= 0)
		timeout = Min(timeout, flush_ms);
	if (h->ngroup > 0 && h->group_slot < 0)
		timeout = 0;			/* writes wait and no group is being written */
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   h->epoll_fd, timeout, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	buildlog_worker_check_interrupts();
}

void
buildlog_http_main(Datum arg)
{
	HttpWorker	h;

	memset(&h, 0, sizeof(h));
	h.group_slot = -1;
	dlist_init(&h.streams);
	h.stats = &buildlog_shared->http;
	/* the gauges count what this process holds: none of a worker before it */
	pg_atomic_write_u64(&h.stats->connections, 0);
	pg_atomic_write_u64(&h.stats->streams, 0);
	pg_atomic_write_u64(&h.stats->uploads, 0);
	buildlog_worker_start(&h.w, &h.stats->slot, 0, 0, 300);
	buildlog_http_load_key(&h);
	buildlog_http_events_init(&h);
	buildlog_http_reads_reset(&h);
	buildlog_http_stream_init(&h);
	while (!start_daemon(&h))
		buildlog_worker_wait(LISTEN_RETRY_S * 1000);

	for (;;)
	{
		buildlog_worker_check_interrupts();
		if (buildlog_worker_reload(&h.w))
			buildlog_http_load_key(&h);
		wait_for_events(&h, buildlog_http_stream_timers(&h));
		MemoryContextReset(h.w.step_cxt);
		MemoryContextSwitchTo(h.w.step_cxt);
		/* the streams' due parts and every finished upload: one commit */
		(void) buildlog_http_stream_timers(&h);
		buildlog_http_group_commit(&h);
		/* a revocation committed: open streams and uploads of its tokens end */
		if (buildlog_http_revocations_moved() && buildlog_http_revocations_refresh(&h))
		{
			buildlog_http_events_revoke(&h);
			buildlog_http_stream_revoke(&h);
		}
		/* answers of the readers, then new parts for the event streams */
		buildlog_http_reads_collect(&h);
		buildlog_http_events_refill(&h);
		buildlog_http_limits_sweep();
		MHD_run(h.daemon);
		MemoryContextSwitchTo(h.w.loop_cxt);
		if (mhd_log_pending)
		{
			mhd_log_pending = false;
			buildlog_worker_problem(&h.w, LOG, mhd_log);
		}
	}
}
