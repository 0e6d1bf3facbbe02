/*-------------------------------------------------------------------------
 * travis_api.c
 *	  travis-logs' HTTP API on buildlog's HTTP worker, so a Travis CI
 *	  deployment points its services at buildlog without changing them.
 *
 * travis-worker's HTTP log part sink:
 *	POST /log-parts/multi		a JSON array of {"@type":"log_part","job_id",
 *								"number","content" (base64),"encoding":"base64",
 *								"final","tok"}, "Authorization: token sig:<hex
 *								SHA-1 of the parts' tok values joined>" (or the
 *								service token); 204 once the parts are committed
 * Each part's "tok" is a buildlog job token of its job (write or admin
 * scope, auth.c).  The batch is checked whole first (JSON, the signature,
 * every part's fields: 400 or 403, nothing stored, as travis-logs does);
 * then part by part: a part whose token is refused, whose content is not
 * base64 or too large, or that comes for a job whose final part is stored,
 * is kept aside in buildlog.rejected_parts with its reason (its token left
 * out), never blocking the good parts, which travis-worker would otherwise
 * send again and again; a part already stored (a batch sent again after a
 * lost answer) is skipped.  The others go to the group commit
 * (uploads.c), one write per job, and 204 comes after its commit.
 *
 * travis-logs' web API (travis-api, travis-web), with the service token
 * of buildlog.travis_token_file ("Authorization: token <it>"; unset: 500,
 * wrong or missing: 403, as travis-logs answers):
 *	GET /logs/{job}				the log's row in travis-logs' shape, its content
 *								from the read path (fetch()); ?by=id is the same
 *								(a log's id is its job's id here)
 *	GET /logs/{job}/id			{"id":job,"@type":"log"}
 *	PUT /logs/{job}				set_content() with the body (empty: none), or the
 *								removal with ?removed_by=N; the row back
 *	POST /logs/multi			several of those in one transaction: 204
 *	GET /log-parts/{job}		?after=N, ?content=false: the parts as
 *								{"@type":"log_parts","job_id","log_parts":[...]}
 * The reads run in the reader processes (reader_pool.c) like GET
 * /jobs/{id}/log.  JSON is parsed with jansson, whose memory is malloc'd
 * and released before anything can raise an ERROR.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <microhttpd.h>
#include <openssl/sha.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
/* fmgrprotos.h declares SQL functions named like jansson's json_object, json_typeof */
#define json_object pg_sql_json_object
#define json_typeof pg_sql_json_typeof
#include "utils/builtins.h"
#undef json_object
#undef json_typeof
#include "utils/json.h"
#include "utils/memutils.h"

#include <jansson.h>

#include "guc.h"
#include "http/auth.h"
#include "http/reader_pool.h"
#include "http/reads.h"
#include "http/travis_api.h"
#include "http/uploads.h"
#include "ingest.h"
#include "rejected.h"
#include "secret.h"
#include "spiutil.h"
#include "token.h"
#include "utf8.h"
#include "wire.h"

/* What a travis upload does with its body. */
typedef enum TravisOp
{
	TRAVIS_PARTS_MULTI,			/* POST /log-parts/multi */
	TRAVIS_PUT_LOG,				/* PUT /logs/{job} */
	TRAVIS_LOGS_MULTI			/* POST /logs/multi */
} TravisOp;

/* One travis upload being read, then waiting for its writes (loop context). */
typedef struct TravisUpload
{
	HttpUploadKind kind;		/* HTTP_KIND_TRAVIS */
	TravisOp	op;
	struct MHD_Connection *conn;
	int64		job_id;			/* PUT /logs/{job} */
	int64		removed_by;		/* PUT /logs/{job}?removed_by=N, else 0 */
	char		sig[2 * SHA_DIGEST_LENGTH + 1];	/* "token sig:<hex>", "" with
												 * the service token */
	StringInfoData body;
	bool		too_large;		/* past buildlog.http_max_body: 413 at its end */
	bool		queued;			/* waiting (suspended) for the group commit */
	bool		answered;		/* its answer is below */
	int			pending;		/* its writes not yet decided */
	int			stored;			/* parts written */
	int			skipped;		/* parts already stored */
	int			rejected;		/* parts kept aside */
	unsigned int worst;			/* the worst status of its writes (0: none) */
	char	   *detail;			/* that write's detail (loop context) */
	unsigned int status;
	char	   *answer;			/* in the loop context */
	size_t		answer_len;
} TravisUpload;

/* One part of a POST /log-parts/multi, as read. */
typedef struct TravisPart
{
	int64		job_id;
	int32		number;
	bool		final;
	char	   *tok;
	char	   *content;		/* base64, as sent */
	size_t		content_len;
	text	   *text;			/* decoded, cleaned: NULL when rejected */
	int			replaced;
	const char *reason;			/* why it is kept aside, or NULL */
	bool		skip;			/* stored already */
} TravisPart;

/* A parsed batch (the step context). */
typedef struct TravisBatch
{
	TravisPart *parts;
	int			n;
	unsigned int status;		/* a refusal of the whole batch, else 0 */
	char	   *detail;
} TravisBatch;

static char *service_token = NULL;	/* buildlog.travis_token_file, loop context */

static SPIPlanPtr stored_plan = NULL;
static SPIPlanPtr set_plan = NULL;
static SPIPlanPtr row_plan = NULL;
static SPIPlanPtr id_plan = NULL;
static SPIPlanPtr log_plan = NULL;
static SPIPlanPtr parts_plan = NULL;

/*
 * A logs row in travis-logs' shape (its columns, log id = job id, plus
 * "@type"); %s is the content's expression.
 */
#define LOG_ROW_JSON \
	"pg_catalog.json_build_object('id', l.job_id, 'job_id', l.job_id, 'content', %s," \
	" 'removed_by', l.removed_by, 'removed_by_id', l.removed_by, 'removed_at', l.removed_at," \
	" 'created_at', l.created_at, 'updated_at', l.updated_at, 'aggregated_at', l.aggregated_at," \
	" 'archived_at', l.archived_at, 'archive_verified', l.verified_at is not null," \
	" 'purged_at', l.purged_at, 'archiving', false, '@type', 'log')::text"

void
buildlog_travis_load_token(HttpWorker *h)
{
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

	if (service_token != NULL)
	{
		explicit_bzero(service_token, strlen(service_token));
		pfree(service_token);
		service_token = NULL;
	}
	if (buildlog_travis_token_file == NULL || buildlog_travis_token_file[0] == '\0')
	{
		MemoryContextSwitchTo(old);
		return;
	}
	PG_TRY();
	{
		service_token = buildlog_read_secret_file("buildlog.travis_token_file",
												  buildlog_travis_token_file);
	}
	PG_CATCH();
	{
		char		msg[BUILDLOG_TEXT_LEN];

		buildlog_worker_abort(h->w.loop_cxt, "reading the travis service token failed", msg, sizeof(msg));
		buildlog_worker_problem(&h->w, WARNING, msg);
		service_token = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/* Equal strings, compared in time that depends on their lengths only. */
static bool
secure_equal(const char *a, const char *b)
{
	size_t		n = strlen(a);
	unsigned char diff = 0;

	if (n != strlen(b))
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char) a[i] ^ (unsigned char) b[i];
	return diff == 0;
}

/*
 * Does the request carry the service token ("Authorization: token <it>")?
 * False with travis-logs' answer in r: 500 when none is configured, 403
 * otherwise.
 */
static bool
service_authorized(struct MHD_Connection *conn, HttpResponse *r)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_AUTHORIZATION);

	if (service_token == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  "authentication token is not set: name a file holding travis-logs' AUTH_TOKEN in buildlog.travis_token_file and reload.");
		return false;
	}
	if (auth == NULL || strncmp(auth, "token ", 6) != 0 || !secure_equal(auth + 6, service_token))
	{
		buildlog_http_problem(r, MHD_HTTP_FORBIDDEN, "Forbidden",
							  "This request needs the service token: Authorization: token <buildlog.travis_token_file>.");
		return false;
	}
	return true;
}

/* A job id in a path: digits only, 1 .. 2^63-1; -1 otherwise. */
static int64
path_job(const char *p, const char **end)
{
	const char *e = p;
	int64		id = buildlog_http_parse_offset(p, &e);

	*end = e;
	return id > 0 ? id : -1;
}

/* Check the body's announced size; false with 411 or 413 in r. */
static bool
body_size_ok(struct MHD_Connection *conn, HttpResponse *r)
{
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (!buildlog_http_has_length(conn, r))
		return false;
	if (length != NULL && strtoll(length, NULL, 10) > buildlog_http_max_body)
	{
		buildlog_http_add_header(r, "Connection", "close");
		buildlog_http_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
							  psprintf("The body may have at most %d bytes (buildlog.http_max_body); nothing was stored.",
									   buildlog_http_max_body));
		return false;
	}
	return true;
}

/* A new upload's state, its body read next. */
static TravisUpload *
new_upload(HttpWorker *h, struct MHD_Connection *conn, TravisOp op)
{
	TravisUpload *u = MemoryContextAllocZero(h->w.loop_cxt, sizeof(TravisUpload));
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

	u->kind = HTTP_KIND_TRAVIS;
	u->op = op;
	u->conn = conn;
	initStringInfo(&u->body);
	MemoryContextSwitchTo(old);
	return u;
}

/*
 * POST /log-parts/multi, headers read: "token sig:<40 hex>" (checked
 * against the body at its end) or the service token; 403 otherwise, as
 * travis-logs answers (a Bearer JWT is travis-logs' own and not taken).
 */
static bool
begin_parts_multi(HttpWorker *h, struct MHD_Connection *conn, HttpResponse *r, void **state)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_AUTHORIZATION);
	TravisUpload *u;
	const char *sig = NULL;

	if (auth != NULL && strncmp(auth, "token sig:", 10) == 0)
		sig = auth + 10;
	else if (auth == NULL || strncmp(auth, "token ", 6) != 0 ||
			 service_token == NULL || !secure_equal(auth + 6, service_token))
	{
		buildlog_http_problem(r, MHD_HTTP_FORBIDDEN, "Forbidden",
							  "POST /log-parts/multi needs Authorization: token sig:<hex SHA-1 of the parts' tok values joined>, as travis-worker sends it.");
		return false;
	}
	if (!body_size_ok(conn, r))
		return false;
	u = new_upload(h, conn, TRAVIS_PARTS_MULTI);
	if (sig != NULL)
		strlcpy(u->sig, strlen(sig) == 2 * SHA_DIGEST_LENGTH ? sig : "-", sizeof(u->sig));
	*state = u;
	return true;
}

/* PUT /logs/{job} or POST /logs/multi, headers read: the service token first. */
static bool
begin_logs(HttpWorker *h, struct MHD_Connection *conn, TravisOp op, int64 job_id,
		   HttpResponse *r, void **state)
{
	const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "removed_by");
	int64		removed_by = 0;
	TravisUpload *u;

	if (!service_authorized(conn, r))
		return false;
	if (op == TRAVIS_PUT_LOG && by != NULL && by[0] != '\0' &&
		!buildlog_http_parse_int(by, 1, PG_INT64_MAX, &removed_by))
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "removed_by must be a positive id (the user who removed the log).");
		return false;
	}
	if (!body_size_ok(conn, r))
		return false;
	u = new_upload(h, conn, op);
	u->job_id = job_id;
	u->removed_by = removed_by;
	*state = u;
	return true;
}

/*
 * GET /logs/{job} or /log-parts/{job}: handed to a reader, or read here
 * when none runs.
 */
static bool
serve_travis_read(HttpWorker *h, struct MHD_Connection *conn, HttpReadKind kind,
				  int64 job_id, HttpResponse *r, void **state)
{
	const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
	const char *content = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "content");
	const char *numbers = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "part_numbers");
	const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
	HttpReadArgs args;
	HttpReadCall call = {&args, r};

	memset(&args, 0, sizeof(args));
	args.kind = kind;
	args.job_id = job_id;
	args.start = -1;
	args.after = -1;
	if (by != NULL && strcmp(by, "id") != 0 && strcmp(by, "job_id") != 0)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "by must be id or job_id (a log's id is its job's id here).");
		return false;
	}
	if (kind == HTTP_READ_TRAVIS_PARTS && after != NULL)
	{
		int64		v;

		if (!buildlog_http_parse_int(after, -1, PG_INT32_MAX, &v))
		{
			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  "after must be a part number (an integer from -1 to 2147483647).");
			return false;
		}
		args.after = (int32) v;
	}
	if (kind == HTTP_READ_TRAVIS_PARTS && numbers != NULL && numbers[0] != '\0')
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "part_numbers is not supported: read the parts after a number (?after=N).");
		return false;
	}
	args.index_only = content != NULL && strcmp(content, "false") == 0;
	if (buildlog_http_read_handoff(h, conn, &args, state, r))
		return true;
	if (r->status != 0)
		return false;			/* every read slot taken: 503 */
	if (buildlog_worker_run_step(&h->w, "a travis read", buildlog_travis_read_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_read_failed(&h->w, r);
	}
	return false;
}

/* Step: GET /logs/{job}/id. */
static int
log_id_step(BuildlogWorker *w, void *arg)
{
	HttpReadCall *call = (HttpReadCall *) arg;
	HttpResponse *r = call->r;
	bool		known;

	if (!buildlog_http_begin_read("buildlog http: GET /logs/{job}/id", r))
		return 0;
	buildlog_run_by_id(&id_plan, "select 1 from buildlog.logs where job_id = $1",
					   call->args->job_id, true, SPI_OK_SELECT);
	known = SPI_processed > 0;
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
	if (!known)
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
	else
	{
		char	   *body = psprintf("{\"id\":" INT64_FORMAT ",\"@type\":\"log\"}\n", call->args->job_id);

		buildlog_http_set_body(r, MHD_HTTP_OK, "application/json; charset=utf-8", body, strlen(body));
	}
	return 0;
}

/* One route's handler: the job of its path ({job}, else 0) and where its answer goes. */
typedef void (*TravisHandler) (HttpWorker *h, struct MHD_Connection *conn, int64 job,
							   HttpResponse *r, void **state, bool *reading, bool *queued);

/* POST /log-parts/multi: travis-worker's sink. */
static void
route_parts_multi(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
				  void **state, bool *reading, bool *queued)
{
	*reading = begin_parts_multi(h, conn, r, state);
}

/* POST /logs/multi. */
static void
route_logs_multi(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
				 void **state, bool *reading, bool *queued)
{
	*reading = begin_logs(h, conn, TRAVIS_LOGS_MULTI, 0, r, state);
}

/* PUT /logs/{job}. */
static void
route_put_log(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
			  void **state, bool *reading, bool *queued)
{
	*reading = begin_logs(h, conn, TRAVIS_PUT_LOG, job, r, state);
}

/* GET /logs/{job}: a read of the readers. */
static void
route_get_log(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
			  void **state, bool *reading, bool *queued)
{
	if (service_authorized(conn, r))
		*queued = serve_travis_read(h, conn, HTTP_READ_TRAVIS_LOG, job, r, state);
}

/* GET /log-parts/{job}: a read of the readers. */
static void
route_get_parts(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
				void **state, bool *reading, bool *queued)
{
	if (service_authorized(conn, r))
		*queued = serve_travis_read(h, conn, HTTP_READ_TRAVIS_PARTS, job, r, state);
}

/* GET /logs/{job}/id: one index lookup, in the HTTP worker. */
static void
route_log_id(HttpWorker *h, struct MHD_Connection *conn, int64 job, HttpResponse *r,
			 void **state, bool *reading, bool *queued)
{
	HttpReadArgs args;
	HttpReadCall call = {&args, r};

	if (!service_authorized(conn, r))
		return;
	memset(&args, 0, sizeof(args));
	args.job_id = job;
	if (buildlog_worker_run_step(&h->w, "GET /logs/{job}/id", log_id_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_read_failed(&h->w, r);
	}
}

/*
 * travis-logs' routes, in the shape of server.c's table (script/check-docs
 * reads both): a path ("{job}" is a job id), a method (GET also answers
 * HEAD unless no_head), the handler.
 */
typedef struct TravisRoute
{
	const char *path;
	const char *method;
	bool		no_head;
	TravisHandler handle;
} TravisRoute;

static const TravisRoute travis_routes[] = {
	{"/log-parts/multi", "POST", false, route_parts_multi},
	{"/log-parts/{job}", "GET", false, route_get_parts},
	{"/logs/multi", "POST", false, route_logs_multi},
	{"/logs/{job}", "GET", false, route_get_log},
	{"/logs/{job}", "PUT", false, route_put_log},
	{"/logs/{job}/id", "GET", false, route_log_id},
	{NULL, NULL, false, NULL}
};

/* Does url match a route's path ("{job}": a job id, into *job)? */
static bool
travis_path_matches(const char *pattern, const char *url, int64 *job)
{
	const char *hole = strstr(pattern, "{job}");
	const char *end;

	if (hole == NULL)
		return strcmp(pattern, url) == 0;
	if (strncmp(pattern, url, hole - pattern) != 0)
		return false;
	*job = path_job(url + (hole - pattern), &end);
	return *job > 0 && strcmp(end, hole + 5) == 0;
}

bool
buildlog_travis_route(HttpWorker *h, struct MHD_Connection *conn, const char *method,
					  const char *url, HttpResponse *r, void **state, bool *reading,
					  bool *queued)
{
	StringInfoData allow;
	bool		known = false;

	if (strncmp(url, "/logs/", 6) != 0 && strncmp(url, "/log-parts/", 11) != 0)
		return false;
	initStringInfo(&allow);
	for (const TravisRoute *route = travis_routes; route->path != NULL; route++)
	{
		int64		job = 0;
		bool		head_ok = !route->no_head && strcmp(route->method, MHD_HTTP_METHOD_GET) == 0;

		if (!travis_path_matches(route->path, url, &job))
			continue;
		known = true;
		if (strcmp(method, route->method) == 0 ||
			(head_ok && strcmp(method, MHD_HTTP_METHOD_HEAD) == 0))
		{
			route->handle(h, conn, job, r, state, reading, queued);
			return true;
		}
		appendStringInfo(&allow, "%s%s%s", allow.len > 0 ? ", " : "", route->method,
						 head_ok ? ", HEAD" : "");
	}
	if (!known)
		return false;			/* a 404 of server.c */
	buildlog_http_add_header(r, "Allow", allow.data);
	buildlog_http_problem(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed",
						  psprintf("%s is not allowed here.", method));
	return true;
}

/* ---- reads (in a reader, or in the HTTP worker when none runs) ---- */

/* GET /logs/{job}: the row in travis-logs' shape, the content from fetch(). */
static void
read_travis_log(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	char	   *json = NULL;
	MemoryContext old;

	if (!buildlog_http_begin_read("buildlog http: GET /logs/{job}", r))
		return;
	buildlog_run_by_id(&log_plan,
					   psprintf("select " LOG_ROW_JSON " from buildlog.logs l where l.job_id = $1",
								"nullif(buildlog.fetch(l.job_id), '')"),
					   args->job_id, true, SPI_OK_SELECT);
	old = MemoryContextSwitchTo(w->step_cxt);
	if (SPI_processed > 0)
		json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
	if (json == NULL)
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
	else
		buildlog_http_set_body(r, MHD_HTTP_OK, "application/json; charset=utf-8", json, strlen(json));
}

/*
 * GET /log-parts/{job}?after=N: the parts above N, one per number, in order
 * (parts()), whether pending or aggregated; ?content=false leaves the
 * contents out.
 */
static void
read_travis_parts(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	Oid			types[3] = {INT8OID, INT4OID, BOOLOID};
	Datum		values[3] = {Int64GetDatum(args->job_id), Int32GetDatum(args->after),
	BoolGetDatum(!args->index_only)};
	bool		isnull;
	char	   *json = NULL;
	MemoryContext old;

	if (!buildlog_http_begin_read("buildlog http: GET /log-parts/{job}", r))
		return;
	buildlog_run(buildlog_plan(&parts_plan,
							   "select (select true from buildlog.logs where job_id = $1),"
							   " pg_catalog.json_build_object('@type', 'log_parts', 'job_id', $1, 'log_parts',"
							   "  coalesce(pg_catalog.json_agg(case when $3"
							   "   then pg_catalog.json_build_object('log_id', $1, 'number', p.number,"
							   "    'content', p.content, 'final', p.final)"
							   "   else pg_catalog.json_build_object('log_id', $1, 'number', p.number,"
							   "    'final', p.final) end order by p.number), '[]'))::text"
							   " from buildlog.parts($1, $2) p",
							   3, types),
				 values, NULL, true, SPI_OK_SELECT);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	old = MemoryContextSwitchTo(w->step_cxt);
	if (!isnull)
		json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
	if (json == NULL)
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
	else
		buildlog_http_set_body(r, MHD_HTTP_OK, "application/json; charset=utf-8", json, strlen(json));
}

int
buildlog_travis_read_step(BuildlogWorker *w, void *arg)
{
	HttpReadCall *call = (HttpReadCall *) arg;

	if (call->args->kind == HTTP_READ_TRAVIS_LOG)
		read_travis_log(w, call->args, call->r);
	else
		read_travis_parts(w, call->args, call->r);
	return 0;
}

/* ---- POST /log-parts/multi ---- */

/* A whole-batch refusal (400 or 403): nothing is stored. */
static void
refuse_batch(TravisBatch *b, unsigned int status, char *detail)
{
	if (b->status == 0)
	{
		b->status = status;
		b->detail = detail;
	}
}

/* A part's job id: a positive integer, or a string of digits (travis-logs' /^[0-9]+$/). */
static bool
json_job_id(json_t *v, int64 *out)
{
	int64		id;

	if (json_is_integer(v))
		id = (int64) json_integer_value(v);
	else if (!json_is_string(v) || !buildlog_http_parse_int(json_string_value(v), 1, PG_INT64_MAX, &id) ||
			 json_string_length(v) != strlen(json_string_value(v)))
		return false;
	*out = id;
	return id > 0;
}

/* A part's number: 0 .. 2^31-1, as an integer or digits, or "last". */
static bool
json_number(json_t *v, int32 *out)
{
	int64		n;

	if (json_is_string(v) && strcmp(json_string_value(v), "last") == 0)
		n = BUILDLOG_LAST_NUMBER;
	else if (json_is_integer(v))
		n = (int64) json_integer_value(v);
	else if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)) ||
			 !buildlog_http_parse_int(json_string_value(v), 0, PG_INT32_MAX, &n))
		return false;
	if (n < 0 || n > PG_INT32_MAX)
		return false;
	*out = (int32) n;
	return true;
}

/*
 * Read one element of the array into *p, its strings copied (palloc);
 * false with the refusal of the batch.
 */
static bool
read_part(json_t *e, int i, TravisPart *p, TravisBatch *b)
{
	json_t	   *type = json_object_get(e, "@type");
	json_t	   *enc = json_object_get(e, "encoding");
	json_t	   *content = json_object_get(e, "content");
	json_t	   *final = json_object_get(e, "final");
	json_t	   *tok = json_object_get(e, "tok");

	memset(p, 0, sizeof(*p));
	if (!json_is_string(type) || strcmp(json_string_value(type), "log_part") != 0)
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"@type\" must be \"log_part\"; nothing was stored.", i));
	else if (!json_is_string(enc) || strcmp(json_string_value(enc), "base64") != 0)
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"encoding\" must be \"base64\"; nothing was stored.", i));
	else if (!json_job_id(json_object_get(e, "job_id"), &p->job_id))
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"job_id\" must be a positive integer; nothing was stored.", i));
	else if (!json_number(json_object_get(e, "number"), &p->number))
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"number\" must be 0 .. 2147483647 or \"last\"; nothing was stored.", i));
	else if (content != NULL && !json_is_string(content) && !json_is_null(content))
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"content\" must be a base64 string; nothing was stored.", i));
	else if (final != NULL && !json_is_boolean(final) && !json_is_null(final))
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"final\" must be true or false; nothing was stored.", i));
	else if (tok != NULL && !json_is_string(tok) && !json_is_null(tok))
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, psprintf("part %d: \"tok\" must be a string; nothing was stored.", i));
	if (b->status != 0)
		return false;
	p->final = json_is_true(final);
	p->tok = pstrdup(json_is_string(tok) ? json_string_value(tok) : "");
	if (json_is_string(content))
	{
		p->content_len = json_string_length(content);
		p->content = palloc(p->content_len + 1);
		memcpy(p->content, json_string_value(content), p->content_len + 1);
	}
	else
		p->content = pstrdup("");
	return true;
}

/*
 * Does the signature of the header match the parts' tok values joined
 * (travis-worker's generatePayloadSignature)?  "" (the service token): no
 * signature to check.
 */
static bool
signature_ok(const char *sig, TravisBatch *b)
{
	StringInfoData all;
	unsigned char md[SHA_DIGEST_LENGTH];
	char		hex[2 * SHA_DIGEST_LENGTH + 1];

	if (sig[0] == '\0')
		return true;
	initStringInfo(&all);
	for (int i = 0; i < b->n; i++)
		appendStringInfoString(&all, b->parts[i].tok);
	SHA1((unsigned char *) all.data, all.len, md);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	pfree(all.data);
	return pg_strcasecmp(hex, sig) == 0 && strlen(sig) == strlen(hex);
}

/*
 * Decode and clean a part's content with the drain's own step (base64,
 * buildlog.max_part_bytes, UTF-8 cleaning); a reason when it cannot be.
 */
static void
decode_part(TravisPart *p)
{
	char	   *buf = palloc(VARHDRSZ + p->content_len + 1);
	ParsedPart	parsed;

	memset(&parsed, 0, sizeof(parsed));
	memcpy(buf + VARHDRSZ, p->content, p->content_len);
	buildlog_part_content(&parsed, "content", buf, p->content_len, true, buildlog_max_part_bytes);
	if (!parsed.ok)
	{
		p->reason = pstrdup(parsed.reason);
		return;
	}
	p->text = parsed.content;
	p->replaced = parsed.replaced;
}

/* The body as JSON (jansson's tree, to json_decref), or NULL with why not. */
static json_t *
load_body(TravisUpload *u, char **why)
{
	json_error_t err;
	json_t	   *root = json_loadb(u->body.data, u->body.len, JSON_REJECT_DUPLICATES, &err);

	if (root == NULL)
		*why = psprintf("The body is not JSON (line %d, column %d: %s); nothing was stored.",
						err.line, err.column, err.text);
	return root;
}

/* The parsing step's argument. */
typedef struct ParseCall
{
	TravisUpload *u;
	TravisBatch *b;
} ParseCall;

/*
 * Step (no transaction): parse the body with jansson, check the signature
 * and every part's fields, decode the contents.  jansson's tree is freed
 * whatever happens.
 */
static int
parse_step(BuildlogWorker *w, void *arg)
{
	ParseCall  *call = (ParseCall *) arg;
	TravisBatch *b = call->b;
	char	   *why = NULL;
	json_t	   *volatile root = load_body(call->u, &why);

	if (root == NULL)
	{
		refuse_batch(b, MHD_HTTP_BAD_REQUEST, why);
		return 0;
	}
	PG_TRY();
	{
		if (!json_is_array(root))
			refuse_batch(b, MHD_HTTP_BAD_REQUEST,
						 pstrdup("The body must be a JSON array of log parts; nothing was stored."));
		else
		{
			b->n = (int) json_array_size(root);
			b->parts = palloc0(sizeof(TravisPart) * Max(b->n, 1));
			for (int i = 0; i < b->n && b->status == 0; i++)
			{
				json_t	   *e = json_array_get(root, i);

				if (!json_is_object(e))
					refuse_batch(b, MHD_HTTP_BAD_REQUEST,
								 psprintf("part %d is not a JSON object; nothing was stored.", i));
				else
					(void) read_part(e, i, &b->parts[i], b);
			}
		}
	}
	PG_FINALLY();
	{
		json_decref(root);
	}
	PG_END_TRY();
	if (b->status == 0 && !signature_ok(call->u->sig, b))
		refuse_batch(b, MHD_HTTP_FORBIDDEN,
					 pstrdup("The signature (Authorization: token sig:...) is not the SHA-1 of the parts' tok values joined; nothing was stored."));
	for (int i = 0; i < b->n && b->status == 0; i++)
	{
		decode_part(&b->parts[i]);
		CHECK_FOR_INTERRUPTS();
	}
	return 0;
}

/* The detail of a problem+json answer in r (its "detail"), else its body. */
static char *
problem_detail(HttpResponse *r)
{
	json_t	   *doc = json_loadb(r->body, r->len, 0, NULL);
	json_t	   *detail = doc ? json_object_get(doc, "detail") : NULL;
	char	   *out = pnstrdup(json_is_string(detail) ? json_string_value(detail) : r->body,
							   json_is_string(detail) ? strlen(json_string_value(detail)) : r->len);

	if (doc)
		json_decref(doc);
	return out;
}

/*
 * Check every part's token (auth.c: form, MAC, expiry, revocation, job,
 * write scope), once per distinct (token, job) in a row; a refused one
 * gets its reason.  False with a 503 in r when tokens cannot be checked at
 * all (no key, revocations unreadable): the batch is sent again.
 */
static bool
check_tokens(HttpWorker *h, TravisBatch *b, HttpResponse *r)
{
	const char *last_tok = NULL;
	int64		last_job = 0;
	const char *last_reason = NULL;

	for (int i = 0; i < b->n; i++)
	{
		TravisPart *p = &b->parts[i];
		HttpResponse t;
		TokenClaims claims;

		if (last_tok == NULL || p->job_id != last_job || strcmp(p->tok, last_tok) != 0)
		{
			memset(&t, 0, sizeof(t));
			t.cxt = h->w.step_cxt;
			last_tok = p->tok;
			last_job = p->job_id;
			last_reason = NULL;
			if (!buildlog_http_authorize_token(h, p->tok, p->job_id, TOKEN_WRITE, &t, &claims))
			{
				if (t.status == MHD_HTTP_SERVICE_UNAVAILABLE)
				{
					*r = t;
					r->cxt = h->w.step_cxt;
					return false;
				}
				last_reason = psprintf("the part's token was refused (%u): %s", t.status,
									   problem_detail(&t));
			}
		}
		if (last_reason != NULL && p->reason == NULL)
			p->reason = last_reason;
	}
	return true;
}

/* A text[] / bytea[] of n Datums. */
static Datum
varlena_array(Datum *d, int n, Oid type)
{
	return PointerGetDatum(construct_array(d, n, type, -1, false, TYPALIGN_INT));
}

/*
 * The parts kept aside, into buildlog.rejected_parts (queue "POST
 * /log-parts/multi", routing key the job id, the part's number as its
 * tag), the body the part as travis-worker's AMQP message (what the drain
 * and replay_rejected() read), without its token.
 */
static void
store_rejected(TravisBatch *b)
{
	Datum	   *q = palloc(sizeof(Datum) * b->n);
	Datum	   *x = palloc(sizeof(Datum) * b->n);
	Datum	   *k = palloc(sizeof(Datum) * b->n);
	Datum	   *tag = palloc(sizeof(Datum) * b->n);
	Datum	   *red = palloc(sizeof(Datum) * b->n);
	Datum	   *why = palloc(sizeof(Datum) * b->n);
	Datum	   *body = palloc(sizeof(Datum) * b->n);
	Datum		arrays[7];
	int			m = 0;

	for (int i = 0; i < b->n; i++)
	{
		TravisPart *p = &b->parts[i];
		StringInfoData j;
		bytea	   *raw;

		if (p->reason == NULL || p->skip)
			continue;
		initStringInfo(&j);
		appendStringInfo(&j, "{\"id\":" INT64_FORMAT ",\"number\":%d,\"encoding\":\"base64\",\"final\":%s,\"log\":",
						 p->job_id, p->number, p->final ? "true" : "false");
		escape_json(&j, p->content);
		appendStringInfoChar(&j, '}');
		raw = palloc(VARHDRSZ + j.len);
		SET_VARSIZE(raw, VARHDRSZ + j.len);
		memcpy(VARDATA(raw), j.data, j.len);
		q[m] = CStringGetTextDatum("POST /log-parts/multi");
		x[m] = CStringGetTextDatum("");
		k[m] = CStringGetTextDatum(psprintf(INT64_FORMAT, p->job_id));
		tag[m] = Int64GetDatum(p->number);
		red[m] = BoolGetDatum(false);
		why[m] = CStringGetTextDatum(p->reason);
		body[m] = PointerGetDatum(raw);
		m++;
	}
	if (m == 0)
		return;
	arrays[0] = varlena_array(q, m, TEXTOID);
	arrays[1] = varlena_array(x, m, TEXTOID);
	arrays[2] = varlena_array(k, m, TEXTOID);
	arrays[3] = PointerGetDatum(construct_array(tag, m, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	arrays[4] = PointerGetDatum(construct_array(red, m, BOOLOID, 1, true, TYPALIGN_CHAR));
	arrays[5] = varlena_array(why, m, TEXTOID);
	arrays[6] = varlena_array(body, m, BYTEAOID);
	buildlog_store_rejected(arrays);
}

/*
 * Mark the parts stored already (a batch sent again: skipped), and those
 * of a job whose final part is stored (its write tokens are over: kept
 * aside), in one query.
 */
static void
mark_stored_and_final(TravisBatch *b)
{
	Datum	   *jobs = palloc(sizeof(Datum) * Max(b->n, 1));
	Datum	   *numbers = palloc(sizeof(Datum) * Max(b->n, 1));
	Oid			types[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[2];

	for (int i = 0; i < b->n; i++)
	{
		jobs[i] = Int64GetDatum(b->parts[i].job_id);
		numbers[i] = Int32GetDatum(b->parts[i].number);
	}
	values[0] = PointerGetDatum(construct_array(jobs, b->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(numbers, b->n, INT4OID, 4, true, TYPALIGN_INT));
	SPI_connect();
	buildlog_run(buildlog_plan(&stored_plan,
							   "select exists (select from buildlog.log_parts p where p.job_id = u.j and p.number = u.n)"
							   "  or coalesce(u.n = any (l.part_numbers), false),"
							   " coalesce(l.final_number is not null, false)"
							   "  or exists (select from buildlog.log_parts p where p.job_id = u.j and p.final)"
							   " from unnest($1, $2) with ordinality u(j, n, i)"
							   " left join buildlog.logs l on l.job_id = u.j order by u.i",
							   2, types),
				 values, NULL, true, SPI_OK_SELECT);
	for (int i = 0; i < b->n; i++)
	{
		bool		isnull;
		TravisPart *p = &b->parts[i];

		p->skip = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		if (!p->skip && p->reason == NULL &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)))
			p->reason = "the job's final part is stored: its write tokens are no longer valid";
	}
	SPI_finish();
}

/* Step: the parts stored already and the finals, then the rejected ones stored. */
static int
prepare_step(BuildlogWorker *w, void *arg)
{
	TravisBatch *b = (TravisBatch *) arg;

	buildlog_worker_begin("buildlog http: POST /log-parts/multi");
	if (b->n > 0)
	{
		mark_stored_and_final(b);
		store_rejected(b);
	}
	buildlog_worker_commit();
	return 0;
}

static void parts_written(HttpWorker *h, GroupWrite *g);

/* Queue the batch's good parts for the group commit, one write per job, in order. */
static void
queue_writes(HttpWorker *h, TravisUpload *u, TravisBatch *b)
{
	bool	   *done = palloc0(sizeof(bool) * Max(b->n, 1));
	MemoryContext old = MemoryContextSwitchTo(h->group_cxt);

	for (int i = 0; i < b->n; i++)
	{
		PartBatch	batch;
		int64		replaced = 0;
		GroupWrite *g;

		if (done[i] || b->parts[i].skip || b->parts[i].reason != NULL)
			continue;
		buildlog_batch_init(&batch, 16);
		for (int j = i; j < b->n; j++)
		{
			TravisPart *p = &b->parts[j];
			text	   *t;

			if (done[j] || p->skip || p->reason != NULL || p->job_id != b->parts[i].job_id)
				continue;
			done[j] = true;
			t = (text *) palloc(VARSIZE_ANY(p->text));
			memcpy(t, p->text, VARSIZE_ANY(p->text));
			buildlog_batch_add(&batch, p->job_id, p->number, PointerGetDatum(t), p->final);
			replaced += p->replaced;
		}
		g = buildlog_http_group_add(h, b->parts[i].job_id, TOKEN_WRITE, &batch);
		g->replaced = replaced;
		g->done = parts_written;
		g->owner = u;
		u->pending++;
	}
	MemoryContextSwitchTo(old);
}

/* The answer of a POST /log-parts/multi: 204 with its counts. */
static void
answer_204(TravisUpload *u, HttpResponse *r)
{
	char		n[32];

	snprintf(n, sizeof(n), "%d", u->stored);
	buildlog_http_add_header(r, "X-Buildlog-Parts-Stored", n);
	snprintf(n, sizeof(n), "%d", u->skipped);
	buildlog_http_add_header(r, "X-Buildlog-Parts-Skipped", n);
	snprintf(n, sizeof(n), "%d", u->rejected);
	buildlog_http_add_header(r, "X-Buildlog-Parts-Rejected", n);
	buildlog_http_set_body(r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
}

/*
 * One of the upload's writes is decided; when the last one is, keep the
 * answer and resume the request.  A write refused or failed makes the
 * whole batch answer 503 (travis-worker sends it again; what was stored
 * is skipped then).
 */
static void
parts_written(HttpWorker *h, GroupWrite *g)
{
	TravisUpload *u = (TravisUpload *) g->owner;

	if (g->status == 0)
		u->stored += (int) g->parts;
	else if (g->status > u->worst)
	{
		u->worst = g->status;
		if (u->detail != NULL)
			pfree(u->detail);
		u->detail = MemoryContextStrdup(h->w.loop_cxt, g->detail ? g->detail : "");
	}
	if (--u->pending > 0)
		return;
	u->answered = true;
	u->queued = false;
	MHD_resume_connection(u->conn);
}

/* The end of a POST /log-parts/multi body: check, keep aside, queue. */
static void
finish_parts_multi(HttpWorker *h, TravisUpload *u, HttpResponse *r)
{
	TravisBatch b;
	ParseCall	call = {u, &b};

	memset(&b, 0, sizeof(b));
	if (buildlog_worker_run_step(&h->w, "POST /log-parts/multi", parse_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error", h->w.error_message);
		return;
	}
	if (b.status != 0)
	{
		buildlog_http_problem(r, b.status, b.status == MHD_HTTP_FORBIDDEN ? "Forbidden" : "Bad Request", b.detail);
		return;
	}
	if (!check_tokens(h, &b, r))
		return;
	if (buildlog_worker_run_step(&h->w, "POST /log-parts/multi", prepare_step, &b) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_add_header(r, "Retry-After", "1");
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable", h->w.error_message);
		return;
	}
	for (int i = 0; i < b.n; i++)
	{
		if (b.parts[i].skip)
			u->skipped++;
		else if (b.parts[i].reason != NULL)
			u->rejected++;
	}
	queue_writes(h, u, &b);
	if (u->pending == 0)
	{
		answer_204(u, r);
		return;
	}
	u->queued = true;
	MHD_suspend_connection(u->conn);
}

/* ---- PUT /logs/{job}, POST /logs/multi ---- */

/* set_content(job, content or NULL, removed_by or NULL), inside the step's transaction. */
static void
set_log(int64 job_id, const char *content, size_t len, int64 removed_by)
{
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	char		nulls[3] = {' ', 'n', 'n'};

	values[0] = Int64GetDatum(job_id);
	if (len > 0)
	{
		Utf8Cleaned clean = buildlog_utf8_clean(content, len);

		values[1] = PointerGetDatum(cstring_to_text_with_len(clean.data, (int) clean.len));
		nulls[1] = ' ';
	}
	if (removed_by > 0)
	{
		values[2] = Int64GetDatum(removed_by);
		nulls[2] = ' ';
	}
	SPI_connect();
	buildlog_run(buildlog_plan(&set_plan, "select buildlog.set_content($1, $2, $3)", 3, types),
				 values, nulls, false, SPI_OK_SELECT);
	SPI_finish();
}

/* What a logs step needs and answers. */
typedef struct LogsCall
{
	TravisUpload *u;
	HttpResponse *r;
} LogsCall;

/* Step: PUT /logs/{job}: set_content(), then the row (travis-logs' answer). */
static int
put_log_step(BuildlogWorker *w, void *arg)
{
	LogsCall   *call = (LogsCall *) arg;
	TravisUpload *u = call->u;
	char	   *json;
	MemoryContext old;

	buildlog_worker_begin_spi("buildlog http: PUT /logs/{job}");
	set_log(u->job_id, u->body.data, u->body.len, u->removed_by);
	buildlog_run_by_id(&row_plan,
					   psprintf("select " LOG_ROW_JSON " from buildlog.logs l where l.job_id = $1",
								"nullif(l.content, '')"),
					   u->job_id, false, SPI_OK_SELECT);	/* sees the set */
	old = MemoryContextSwitchTo(w->step_cxt);
	json = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
	if (json == NULL)
		buildlog_http_problem(call->r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
	else
		buildlog_http_set_body(call->r, MHD_HTTP_OK, "application/json; charset=utf-8", json, strlen(json));
	return 0;
}

/* One item of POST /logs/multi, as read. */
typedef struct LogItem
{
	int64		job_id;
	char	   *content;
	size_t		len;
	int64		removed_by;
} LogItem;

/* Read the items of POST /logs/multi (jansson freed here); false with the 400 in r. */
static bool
read_log_items(TravisUpload *u, HttpResponse *r, LogItem **items, int *n)
{
	char	   *volatile why = NULL;
	char	   *loaded = NULL;
	json_t	   *volatile root = load_body(u, &loaded);

	if (root == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request", loaded);
		return false;
	}
	PG_TRY();
	{
		*n = json_is_array(root) ? (int) json_array_size(root) : 0;
		*items = palloc0(sizeof(LogItem) * Max(*n, 1));
		if (!json_is_array(root))
			why = "The body must be a JSON array of {\"job_id\",\"content\",\"removed_by\"}; nothing was stored.";
		for (int i = 0; i < *n && why == NULL; i++)
		{
			json_t	   *e = json_array_get(root, i);
			json_t	   *content = json_object_get(e, "content");
			json_t	   *by = json_object_get(e, "removed_by");
			LogItem    *it = &(*items)[i];

			if (!json_is_object(e) || !json_job_id(json_object_get(e, "job_id"), &it->job_id))
				why = psprintf("item %d: \"job_id\" must be a positive integer; nothing was stored.", i);
			else if (content != NULL && !json_is_string(content) && !json_is_null(content))
				why = psprintf("item %d: \"content\" must be a string; nothing was stored.", i);
			else if (by != NULL && !json_is_null(by) && !json_job_id(by, &it->removed_by))
				why = psprintf("item %d: \"removed_by\" must be a positive id; nothing was stored.", i);
			else if (json_is_string(content))
			{
				it->len = json_string_length(content);
				it->content = palloc(it->len + 1);
				memcpy(it->content, json_string_value(content), it->len + 1);
			}
		}
	}
	PG_FINALLY();
	{
		json_decref(root);
	}
	PG_END_TRY();
	if (why == NULL)
		return true;
	buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request", why);
	return false;
}

/* Step: POST /logs/multi: every item's set_content() in one transaction. */
static int
logs_multi_step(BuildlogWorker *w, void *arg)
{
	LogsCall   *call = (LogsCall *) arg;
	LogItem    *items;
	int			n;

	if (!read_log_items(call->u, call->r, &items, &n))
		return 0;
	buildlog_worker_begin("buildlog http: POST /logs/multi");
	for (int i = 0; i < n; i++)
	{
		set_log(items[i].job_id, items[i].content, items[i].len, items[i].removed_by);
		CHECK_FOR_INTERRUPTS();
	}
	buildlog_worker_commit();
	MemoryContextSwitchTo(w->step_cxt);
	buildlog_http_set_body(call->r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0);
	return 0;
}

/* Map a failed write step to its answer: bad data 400, else 500. */
static void
step_failed(HttpWorker *h, HttpResponse *r)
{
	r->nheaders = 0;
	if (ERRCODE_TO_CATEGORY(h->w.sqlerrcode) == ERRCODE_DATA_EXCEPTION)
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request", h->w.error_message);
	else
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  h->w.error_message);
	}
}

/* The whole body is in: run the upload's operation (r->status 0: it waits). */
static void
finish(HttpWorker *h, TravisUpload *u, HttpResponse *r)
{
	LogsCall	call = {u, r};

	if (u->queued)
		return;
	if (u->too_large)
	{
		buildlog_http_add_header(r, "Connection", "close");
		buildlog_http_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
							  psprintf("The body may have at most %d bytes (buildlog.http_max_body); nothing was stored.",
									   buildlog_http_max_body));
		return;
	}
	if (u->answered)
	{
		/* resumed after the group commit */
		if (u->worst == 0)
			answer_204(u, r);
		else
		{
			buildlog_http_add_header(r, "Retry-After", "1");
			buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
								  psprintf("A write of the batch was not stored (%u: %s); send the batch again: what was stored is skipped.",
										   u->worst, u->detail ? u->detail : ""));
		}
		return;
	}
	if (u->op == TRAVIS_PARTS_MULTI)
		finish_parts_multi(h, u, r);
	else if (buildlog_worker_run_step(&h->w, u->op == TRAVIS_PUT_LOG ? "PUT /logs/{job}" : "POST /logs/multi",
									  u->op == TRAVIS_PUT_LOG ? put_log_step : logs_multi_step,
									  &call) == WORKER_STEP_ERROR)
		step_failed(h, r);
}

int
buildlog_travis_body(HttpWorker *h, struct MHD_Connection *conn, void *state,
					 const char *data, size_t *size, HttpResponse *r)
{
	TravisUpload *u = (TravisUpload *) state;

	if (*size > 0)
	{
		if (!u->too_large && u->body.len + *size > (size_t) buildlog_http_max_body)
		{
			/* libmicrohttpd cannot answer mid-body: discard the rest, 413 at its end */
			u->too_large = true;
			resetStringInfo(&u->body);
		}
		else if (!u->too_large)
		{
			MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

			appendBinaryStringInfo(&u->body, data, (int) *size);
			MemoryContextSwitchTo(old);
		}
		*size = 0;
		return MHD_YES;
	}
	finish(h, u, r);
	if (r->status == 0)
		return MHD_YES;			/* waiting for the group commit */
	return buildlog_http_send(h, conn, r);
}

void
buildlog_travis_free(void *state)
{
	TravisUpload *u = (TravisUpload *) state;

	pfree(u->body.data);
	if (u->detail != NULL)
		pfree(u->detail);
	pfree(u);
}
