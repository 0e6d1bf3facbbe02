/*-------------------------------------------------------------------------
 * uploads.c
 *	  POST /jobs/{id}/parts: token-scoped uploads of a batch of parts.
 *
 * The body is newline-delimited travis-worker messages, exactly what the
 * drain reads from RabbitMQ ({"id":..,"number":..,"log":..,"final":..},
 * base64 or not), parsed by the same parser and written through the one
 * ingest path (buildlog_ingest: UTF-8 cleaning, limits, the job locks).
 * Group commit: a checked upload waits (suspended) in h->group with the
 * streams' flushes (stream_upload.c); the worker's loop writes the whole group
 * in one transaction, and 200 comes only after that commit.  The request needs a
 * write (or admin) token of the job in "Authorization: Bearer"; a write
 * token stops working once the job's final part is stored.  Refusals come
 * before the body is read (401, 403, 411, 413, 415) or, for its content,
 * without writing anything (400 naming the line).  Tokens are checked in
 * auth.c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "http/auth.h"
#include "http/reader_pool.h"
#include "http/uploads.h"
#include "ingest.h"
#include "job_secrets.h"
#include "spiutil.h"
#include "stream_offsets.h"
#include "token.h"
#include "utf8.h"
#include "wire.h"
#include "wire_json.h"

/* One upload being read (in the worker's loop context). */
typedef struct Upload
{
	HttpUploadKind kind;		/* HTTP_KIND_PARTS */
	struct MHD_Connection *conn;
	bool		queued;			/* waiting (suspended) for the group commit */
	bool		answered;		/* its answer is below */
	unsigned int status;
	const char *type;
	char	   *answer;			/* in the loop context */
	size_t		answer_len;
	int64		job_id;
	int32		number;			/* PUT .../parts/{number}, or HTTP_UPLOAD_* */
	TokenScope	scope;			/* of the request's token */
	int64		removed_by;		/* PUT /jobs/{id}/log?removed_by=N, else 0 */
	StringInfoData body;
	bool		refused;		/* a refusal was queued: discard the rest */
	bool		too_large;		/* past buildlog.http_max_body: the rest is
								 * discarded, the 413 sent at its end */
} Upload;

static SPIPlanPtr final_plan = NULL;
static SPIPlanPtr stored_plan = NULL;

static void upload_written(HttpWorker *h, GroupWrite *g);

bool
buildlog_http_has_length(struct MHD_Connection *conn, HttpResponse *r)
{
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *chunked = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													  MHD_HTTP_HEADER_TRANSFER_ENCODING);

	if (length != NULL || (chunked != NULL && strstr(chunked, "chunked") != NULL))
		return true;
	buildlog_http_problem(r, MHD_HTTP_LENGTH_REQUIRED, "Length Required",
						  "Send Content-Length or a chunked body.");
	return false;
}

bool
buildlog_http_ingest_begin(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
						   int32 number, HttpResponse *r, void **state)
{
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "removed_by");
	int64		removed_by = 0;
	Upload	   *u;
	TokenClaims claims;
	TokenScope	scope;

	bool		admin = number == HTTP_UPLOAD_LOG || number == HTTP_UPLOAD_SECRETS;

	if (!buildlog_http_authorize(h, conn, job_id, admin ? TOKEN_ADMIN : TOKEN_WRITE, r, &claims))
		return false;
	scope = claims.scope;
	if (admin)
	{
		if (!buildlog_http_media_type_is(type, "text/plain"))
		{
			buildlog_http_problem(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type",
								  number == HTTP_UPLOAD_LOG
								  ? "Send the new log as text/plain; charset=utf-8."
								  : "Send the secrets as text/plain; charset=utf-8, one per line.");
			return false;
		}
	}
	else if (!buildlog_http_media_type_is(type, "application/x-ndjson") &&
			 !buildlog_http_media_type_is(type, "application/json"))
	{
		buildlog_http_problem(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type",
							  number == HTTP_UPLOAD_BATCH
							  ? "Send the parts as application/x-ndjson: one travis-worker message per line."
							  : "Send the part as application/json: {\"@type\":\"log_part\",\"encoding\":\"base64\",\"content\":...,\"final\":...}.");
		return false;
	}
	if (!buildlog_http_has_length(conn, r))
		return false;
	if (length != NULL && strtoll(length, NULL, 10) > buildlog_http_max_body)
	{
		buildlog_http_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
							  psprintf("The body may have at most %d bytes (buildlog.http_max_body).",
									   buildlog_http_max_body));
		return false;
	}
	if (number == HTTP_UPLOAD_LOG && by != NULL &&
		!buildlog_http_parse_int(by, 1, PG_INT64_MAX, &removed_by))
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "removed_by must be a positive id (who removed the log).");
		return false;
	}
	u = MemoryContextAllocZero(h->w.loop_cxt, sizeof(Upload));
	u->kind = HTTP_KIND_PARTS;
	u->conn = conn;
	u->job_id = job_id;
	u->number = number;
	u->scope = scope;
	u->removed_by = removed_by;
	{
		MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

		initStringInfo(&u->body);
		MemoryContextSwitchTo(old);
	}
	*state = u;
	return true;
}

bool
buildlog_http_ingest_data(HttpWorker *h, void *state, const char *data, size_t len,
						  HttpResponse *r)
{
	Upload	   *u = (Upload *) state;

	if (u->refused || u->too_large)
		return true;			/* refused: drop the rest */
	if (u->body.len + len > (size_t) buildlog_http_max_body)
	{
		/*
		 * libmicrohttpd cannot answer during an upload: discard the rest
		 * (within the body's deadline) and answer 413 at its end.
		 */
		u->too_large = true;
		resetStringInfo(&u->body);
		return true;
	}
	appendBinaryStringInfo(&u->body, data, (int) len);
	return true;
}

/* What the ingest step needs and answers. */
typedef struct IngestRequest
{
	HttpWorker *h;
	Upload	   *u;
	HttpResponse *r;
} IngestRequest;

/*
 * The part of a PUT body, travis-logs' log_part ({"@type":"log_part",
 * "encoding":"base64","content":...,"final":...}), read by jansson
 * (wire_json.c) and decoded, limited and cleaned like the drain's parts.
 * false with the refusal (400, or 413 for buildlog.max_part_bytes) in r.
 */
static bool
read_log_part(Upload *u, HttpResponse *r, ParsedPart *part)
{
	buildlog_json_parse_log_part(u->body.data, u->body.len, buildlog_max_part_bytes, part);
	if (part->ok)
		return true;
	buildlog_http_problem(r, part->too_large ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
						  part->too_large ? "Content Too Large" : "Bad Request", part->reason);
	return false;
}

/* The parts an upload will write (in the group's context), queued for the group commit. */
static void
queue_upload(IngestRequest *req, const PartBatch *parts, int64 replaced)
{
	GroupWrite *g = buildlog_http_group_add(req->h, req->u->job_id, req->u->scope, parts);

	g->replaced = replaced;
	g->done = upload_written;
	g->owner = req->u;
}

/*
 * Step: PUT /jobs/{id}/parts/{number}: read and check the part (no
 * transaction: nothing is read or written), then queue it.
 */
static int
put_part_step(BuildlogWorker *w, void *arg)
{
	IngestRequest *req = (IngestRequest *) arg;
	Upload	   *u = req->u;
	ParsedPart	part;
	PartBatch	batch;

	MemoryContextSwitchTo(req->h->group_cxt);
	if (read_log_part(u, req->r, &part))
	{
		buildlog_batch_init(&batch, 1);
		buildlog_batch_add(&batch, u->job_id, u->number, PointerGetDatum(part.content), part.final);
		queue_upload(req, &batch, part.replaced);
	}
	return 0;
}

static SPIPlanPtr set_content_plan = NULL;

/*
 * Step: PUT /jobs/{id}/log (admin): set_content() with the body (cleaned
 * UTF-8), or with ?removed_by=N and an empty body the log's removal.
 */
static int
put_log_step(BuildlogWorker *w, void *arg)
{
	IngestRequest *req = (IngestRequest *) arg;
	Upload	   *u = req->u;
	HttpResponse *r = req->r;
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', 'n'};
	bool		isnull;
	int64		discarded;
	Utf8Cleaned clean;
	StringInfoData answer;

	values[0] = Int64GetDatum(u->job_id);
	if (u->removed_by > 0)
	{
		if (u->body.len > 0)
		{
			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  "A removal (?removed_by=N) has an empty body.");
			return 0;
		}
		nulls[1] = 'n';
		values[2] = Int64GetDatum(u->removed_by);
		nulls[2] = ' ';
	}
	else
	{
		clean = buildlog_utf8_clean(u->body.data, u->body.len);
		values[1] = PointerGetDatum(cstring_to_text_with_len(clean.data, (int) clean.len));
	}
	buildlog_worker_begin_spi("buildlog http: PUT /jobs/{id}/log");
	buildlog_run(buildlog_plan(&set_content_plan,
							   "select buildlog.set_content($1, $2, $3)", 3, types),
				 values, nulls, false, SPI_OK_SELECT);
	discarded = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	buildlog_worker_commit_spi();
	{
		MemoryContext old = MemoryContextSwitchTo(r->cxt);

		initStringInfo(&answer);
		appendStringInfo(&answer, "{\"discarded\":" INT64_FORMAT ",\"removed\":%s}\n",
						 isnull ? 0 : discarded, u->removed_by > 0 ? "true" : "false");
		MemoryContextSwitchTo(old);
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/json", answer.data, answer.len);
	return 0;
}

static SPIPlanPtr add_secrets_plan = NULL;

/*
 * Step: POST /jobs/{id}/secrets (admin): add_secrets() with the body's
 * lines, bound as a parameter (never in a statement's text, nor in
 * pg_stat_activity).  The body must be UTF-8: a secret is masked as sent.
 */
static int
put_secrets_step(BuildlogWorker *w, void *arg)
{
	IngestRequest *req = (IngestRequest *) arg;
	Upload	   *u = req->u;
	HttpResponse *r = req->r;
	Oid			types[2] = {INT8OID, TEXTARRAYOID};
	Datum		values[2];
	Datum	   *lines = palloc(sizeof(Datum) * (u->body.len / 2 + 1));
	int			n = 0;
	int			from = 0;
	bool		isnull;
	int32		fresh;
	StringInfoData answer;

	if (pg_encoding_verifymbstr(PG_UTF8, u->body.data, u->body.len) != u->body.len)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "The secrets must be UTF-8 text, one per line.");
		return 0;
	}
	while (from < u->body.len)
	{
		int			to = from;

		while (to < u->body.len && u->body.data[to] != '\n')
			to++;
		/* a CRLF line ending is not part of the secret */
		if (to - from > 0 && u->body.data[to - 1] == '\r')
			lines[n++] = PointerGetDatum(cstring_to_text_with_len(u->body.data + from, to - from - 1));
		else if (to > from)
			lines[n++] = PointerGetDatum(cstring_to_text_with_len(u->body.data + from, to - from));
		from = to + 1;
	}
	if (n == 0)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "The body names no secret: send one per line.");
		return 0;
	}
	values[0] = Int64GetDatum(u->job_id);
	values[1] = PointerGetDatum(construct_array(lines, n, TEXTOID, -1, false, TYPALIGN_INT));
	buildlog_worker_begin_spi("buildlog http: POST /jobs/{id}/secrets");
	buildlog_run(buildlog_plan(&add_secrets_plan,
							   "select buildlog.add_secrets($1, $2)", 2, types),
				 values, NULL, false, SPI_OK_SELECT);
	fresh = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	buildlog_worker_commit_spi();
	{
		MemoryContext old = MemoryContextSwitchTo(r->cxt);

		initStringInfo(&answer);
		appendStringInfo(&answer, "{\"registered\":%d}\n", isnull ? 0 : fresh);
		MemoryContextSwitchTo(old);
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/json", answer.data, answer.len);
	return 0;
}

/*
 * Step: parse every line (in the group's context: the parts wait there for
 * the group commit); any bad line refuses the whole request.
 */
static int
ingest_step(BuildlogWorker *w, void *arg)
{
	IngestRequest *req = (IngestRequest *) arg;
	Upload	   *u = req->u;
	HttpResponse *r = req->r;
	char	   *p = u->body.data;
	char	   *end = u->body.data + u->body.len;
	int			line = 0;
	PartBatch	batch;
	int64		replaced = 0;

	MemoryContextSwitchTo(req->h->group_cxt);
	buildlog_batch_init(&batch, 64);
	while (p < end)
	{
		char	   *nl = memchr(p, '\n', end - p);
		char	   *stop = nl ? nl : end;
		ParsedPart part;

		line++;
		if (stop > p && stop[-1] == '\r')
			stop--;
		if (stop == p)
		{
			p = nl ? nl + 1 : end;
			continue;			/* blank lines are allowed */
		}
		buildlog_parse_part(p, stop - p, buildlog_max_part_bytes, false, &part);
		if (!part.ok || part.job_id != u->job_id)
		{
			MemoryContext old = MemoryContextSwitchTo(r->cxt);

			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  part.ok
								  ? psprintf("line %d: the part is for job " INT64_FORMAT ", not job " INT64_FORMAT " of the URL; nothing was stored.",
											 line, part.job_id, u->job_id)
								  : psprintf("line %d: %s; nothing was stored.", line, part.reason));
			MemoryContextSwitchTo(old);
			return 0;
		}
		buildlog_batch_add(&batch, part.job_id, part.number, PointerGetDatum(part.content),
						   part.final);
		replaced += part.replaced;
		p = nl ? nl + 1 : end;
	}
	if (batch.n == 0)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request", "The body has no part.");
		return 0;
	}
	queue_upload(req, &batch, replaced);
	return 0;
}

/* Map a failed step's error to the problem an upload answers. */
static void
step_problem(BuildlogWorker *w, unsigned int *status, const char **title, const char **detail)
{
	if (ERRCODE_TO_CATEGORY(w->sqlerrcode) == ERRCODE_DATA_EXCEPTION)
	{
		*status = MHD_HTTP_BAD_REQUEST;
		*title = "Bad Request";
	}
	else if (w->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
	{
		*status = MHD_HTTP_CONTENT_TOO_LARGE;
		*title = "Content Too Large";
	}
	else
	{
		buildlog_worker_problem(w, WARNING, w->error);
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		*title = "Internal Server Error";
	}
	*detail = w->error_message;
}

void
buildlog_http_ingest_finish(HttpWorker *h, void *state, HttpResponse *r)
{
	IngestRequest req = {h, (Upload *) state, r};
	WorkerStep	step = req.u->number == HTTP_UPLOAD_BATCH ? ingest_step
		: req.u->number == HTTP_UPLOAD_LOG ? put_log_step
		: req.u->number == HTTP_UPLOAD_SECRETS ? put_secrets_step : put_part_step;
	unsigned int status;
	const char *title;
	const char *detail;

	if (req.u->refused || req.u->queued)
		return;					/* its refusal was queued, or it waits */
	if (req.u->too_large)
	{
		buildlog_http_add_header(r, "Connection", "close");
		buildlog_http_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
							  psprintf("The body may have at most %d bytes (buildlog.http_max_body); nothing was stored.",
									   buildlog_http_max_body));
		return;
	}
	if (req.u->answered)
	{
		/* resumed after the group commit */
		buildlog_http_set_body(r, req.u->status, req.u->type, req.u->answer, req.u->answer_len);
		return;
	}
	if (buildlog_worker_run_step(&h->w, "an upload", step, &req) == WORKER_STEP_ERROR)
	{
		r->nheaders = 0;
		step_problem(&h->w, &status, &title, &detail);
		buildlog_http_problem(r, status, title, detail);
		return;
	}
	if (r->status != 0)
		return;					/* answered (PUT log) or refused */
	/* queued: the answer comes after the group's commit */
	req.u->queued = true;
	MHD_suspend_connection(req.u->conn);
}

void
buildlog_http_ingest_free(void *state)
{
	Upload	   *u = (Upload *) state;

	if (u->number == HTTP_UPLOAD_SECRETS)
		explicit_bzero(u->body.data, u->body.len);	/* also after a refusal */
	pfree(u->body.data);
	if (u->answer != NULL)
		pfree(u->answer);
	pfree(u);
}

/*
 * An upload's write is decided: keep its answer (the loop context: the
 * group's is reset) and resume the request, whose access handler sends it.
 */
static void
upload_written(HttpWorker *h, GroupWrite *g)
{
	Upload	   *u = (Upload *) g->owner;
	HttpResponse r;

	memset(&r, 0, sizeof(r));
	r.cxt = h->w.loop_cxt;
	if (g->status == 0)
	{
		char	   *answer = MemoryContextAlloc(h->w.loop_cxt, 128);

		snprintf(answer, 128, "{\"parts\":" INT64_FORMAT ",\"bytes\":" INT64_FORMAT ",\"replaced\":" INT64_FORMAT "}\n",
				 g->parts, g->batch.bytes, g->replaced);
		buildlog_http_set_body(&r, MHD_HTTP_OK, "application/json", answer, strlen(answer));
	}
	else
		buildlog_http_problem(&r, g->status, g->title, g->detail);
	u->status = r.status;
	u->type = r.content_type;
	u->answer = r.body;
	u->answer_len = r.len;
	u->answered = true;
	u->queued = false;
	MHD_resume_connection(u->conn);
}

GroupWrite *
buildlog_http_group_add(HttpWorker *h, int64 job_id, TokenScope scope, const PartBatch *parts)
{
	GroupWrite *g = MemoryContextAllocZero(h->group_cxt, sizeof(GroupWrite));

	g->job_id = job_id;
	g->scope = scope;
	g->batch = *parts;
	dlist_push_tail(&h->group, &g->node);
	h->ngroup++;
	return g;
}

/* One group being written: the writes, in arrival order. */
typedef struct GroupRun
{
	GroupWrite **writes;
	int			n;
} GroupRun;

/*
 * Which of the group's jobs have their final part stored (a write token is
 * over then) or are removed (the ingest statement stores nothing for them)?
 * One query for all of them, inside the group's transaction.
 */
static void
job_states(GroupRun *run, bool *final, bool *removed)
{
	Datum	   *ids = palloc(sizeof(Datum) * run->n);
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];

	for (int i = 0; i < run->n; i++)
		ids[i] = Int64GetDatum(run->writes[i]->job_id);
	values[0] = PointerGetDatum(construct_array(ids, run->n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	SPI_connect();
	buildlog_run(buildlog_plan(&final_plan,
							   "select coalesce(l.final_number is not null, false)"
							   "  or exists (select 1 from buildlog.log_parts p where p.job_id = j.id and p.final),"
							   " coalesce(l.removed_at is not null, false)"
							   " from unnest($1) with ordinality j(id, i)"
							   " left join buildlog.logs l on l.job_id = j.id order by j.i",
							   1, types),
				 values, NULL, true, SPI_OK_SELECT);
	for (int i = 0; i < run->n; i++)
	{
		bool		isnull;

		final[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		removed[i] = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
}

/*
 * Is every part of a write already stored (pending or aggregated)?  A client
 * that sends a write again after an answer it never got (503, a broken
 * connection) must hear 200 even when that write held the final part.
 */
static bool
write_already_stored(GroupWrite *g)
{
	Oid			types[2] = {INT8OID, INT4ARRAYOID};
	Datum		values[2];
	bool		stored;
	bool		isnull;

	if (g->batch.n == 0)
		return false;
	values[0] = Int64GetDatum(g->job_id);
	values[1] = PointerGetDatum(construct_array(g->batch.numbers, g->batch.n, INT4OID, 4, true,
												TYPALIGN_INT));
	SPI_connect();
	buildlog_run(buildlog_plan(&stored_plan,
							   "select bool_and(exists (select 1 from buildlog.log_parts p"
							   "                         where p.job_id = $1 and p.number = n.n)"
							   "                or coalesce(n.n = any (l.part_numbers), false))"
							   " from unnest($2) n(n) left join buildlog.logs l on l.job_id = $1",
							   2, types),
				 values, NULL, true, SPI_OK_SELECT);
	stored = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return !isnull && stored;
}

/*
 * The streams' offsets after the group, in its transaction: one row per job
 * (its last write in the group), so a resuming runner is told what the
 * database holds.
 */
static void
store_stream_offsets(GroupRun *run, const bool *removed)
{
	int64	   *jobs = palloc(sizeof(int64) * run->n);
	int64	   *raw = palloc(sizeof(int64) * run->n);
	int32	   *next = palloc(sizeof(int32) * run->n);
	int			m = 0;

	for (int i = run->n - 1; i >= 0; i--)
	{
		GroupWrite *g = run->writes[i];
		bool		seen = false;

		if (g->serial == 0 || g->status != 0 || removed[i])
			continue;
		for (int j = 0; j < m && !seen; j++)
			seen = jobs[j] == g->job_id;
		if (seen)
			continue;			/* a later write of the job tells its offset */
		jobs[m] = g->job_id;
		raw[m] = g->raw_end;
		next[m] = g->next_number;
		m++;
	}
	SPI_connect();
	buildlog_stream_offsets_store(jobs, raw, next, m);
	SPI_finish();
}

/*
 * Step: the group in one transaction.  Write tokens of jobs already final
 * are refused (only those writes); the others' parts go through
 * buildlog_ingest in one call and one commit.
 */
static int
group_step(BuildlogWorker *w, void *arg)
{
	GroupRun   *run = (GroupRun *) arg;
	bool	   *final = palloc(sizeof(bool) * run->n);
	bool	   *removed = palloc(sizeof(bool) * run->n);
	int			total = 0;
	PartBatch	all;

	for (int i = 0; i < run->n; i++)
		total += run->writes[i]->batch.n;
	buildlog_batch_init(&all, total);
	buildlog_worker_begin("buildlog http: group commit");
	job_states(run, final, removed);
	for (int i = 0; i < run->n; i++)
	{
		GroupWrite *g = run->writes[i];

		g->status = 0;
		if (g->scope == TOKEN_WRITE && final[i] && g->serial == 0 && write_already_stored(g))
		{
			/* sent again: nothing to store, the answer it missed */
			g->parts = 0;
			continue;
		}
		if (g->scope == TOKEN_WRITE && final[i] && g->serial == 0)
		{
			/* a stream checked this when it began (its parts are one log) */
			g->status = MHD_HTTP_FORBIDDEN;
			g->title = "Forbidden";
			g->detail = "The job's final part is stored: its write tokens are no longer valid.";
			continue;
		}
		g->parts = removed[i] ? 0 : g->batch.n;
		buildlog_batch_append(&all, &g->batch);
	}
	(void) buildlog_ingest_batch(&all);
	/* a stream learns of secrets registered meanwhile (its own ::add-mask::) */
	for (int i = 0; i < run->n; i++)
		if (run->writes[i]->serial != 0 && run->writes[i]->status == 0)
			run->writes[i]->mask_hold = buildlog_job_mask_hold(run->writes[i]->job_id);
	store_stream_offsets(run, removed);
	buildlog_worker_commit();
	return all.n;
}

/*
 * Write n writes in one transaction; when it fails, each alone, so only the
 * bad one gets its error (and a stream's later writes stop after it).  In
 * the HTTP worker or in a reader (w); the details live in cxt.
 */
static void
write_group(BuildlogWorker *w, MemoryContext cxt, GroupWrite **writes, int n)
{
	GroupRun	run = {writes, n};
	HttpStats  *stats = &buildlog_shared->http;

	if (buildlog_worker_run_step(w, "a group commit", group_step, &run) != WORKER_STEP_ERROR)
	{
		pg_atomic_fetch_add_u64(&stats->ingest_commits, 1);
		return;
	}
	for (int i = 0; i < n; i++)
	{
		GroupRun	one = {&writes[i], 1};
		GroupWrite *g = writes[i];
		bool		after_failed = false;

		for (int j = 0; j < i && g->serial != 0; j++)
			if (writes[j]->serial == g->serial && writes[j]->status >= 500)
				after_failed = true;
		if (after_failed)
		{
			g->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			g->title = "Internal Server Error";
			g->detail = "An earlier part of this stream could not be stored.";
			continue;
		}
		if (buildlog_worker_run_step(w, "an upload", group_step, &one) == WORKER_STEP_ERROR)
		{
			step_problem(w, &g->status, &g->title, &g->detail);
			g->detail = MemoryContextStrdup(cxt, g->detail);
			if (g->serial != 0 && g->status < 500)
				g->status = MHD_HTTP_INTERNAL_SERVER_ERROR;	/* its later writes stop too */
		}
		else
			pg_atomic_fetch_add_u64(&stats->ingest_commits, 1);
	}
}

/* Write the writes in transactions of at most buildlog.batch_bytes. */
static void
write_groups(BuildlogWorker *w, MemoryContext cxt, GroupWrite **writes, int n)
{
	int			from = 0;
	int64		bytes = 0;

	/* transactions of at most buildlog.batch_bytes (arrays far below 1 GB) */
	for (int i = 0; i < n; i++)
	{
		bytes += writes[i]->batch.bytes;
		if (i == n - 1 || bytes + writes[i + 1]->batch.bytes > buildlog_batch_bytes)
		{
			write_group(w, cxt, writes + from, i + 1 - from);
			from = i + 1;
			bytes = 0;
		}
	}
}

/* The writes decided: count them and let each answer its request. */
static void
writes_done(HttpWorker *h, GroupWrite **writes, int n)
{
	for (int i = 0; i < n; i++)
	{
		GroupWrite *g = writes[i];

		if (g->status == 0)
		{
			pg_atomic_fetch_add_u64(&h->stats->ingest_writes, 1);
			pg_atomic_fetch_add_u64(&h->stats->ingest_parts, g->parts);
		}
		g->done(h, g);
	}
}

/*
 * Group commits by a reader.  The HTTP worker writes the group's parts to a
 * temporary file, hands it to a reader (HTTP_WRITE_GROUP) and goes on
 * serving; the reader runs the same group commit (write_groups) and answers
 * each write's outcome; then the writes' requests are answered.  One group
 * at a time, so a stream's writes commit in order.
 */
typedef struct GroupFileWrite
{
	int64		job_id;
	uint64		serial;
	int64		raw_end;
	int32		next_number;
	int32		scope;
	int32		n;
} GroupFileWrite;

typedef struct GroupFilePart
{
	int32		number;
	uint32		len;
	bool		final;
} GroupFilePart;

typedef struct GroupFileResult
{
	uint32		status;
	int64		parts;
	char		title[32];
	char		detail[BUILDLOG_TEXT_LEN];
} GroupFileResult;

/* Where the HTTP worker pid puts group seq for a reader. */
static void
group_path(char *path, size_t len, int pid, int64 seq)
{
	snprintf(path, len, "base/" PG_TEMP_FILES_DIR "/" PG_TEMP_FILE_PREFIX "buildlog_http_group.%d." INT64_FORMAT,
			 pid, seq);
}

/* Hand the group to a reader; false when none can take it (write it here). */
static bool
hand_group(HttpWorker *h, GroupWrite **writes, int n)
{
	StringInfoData buf;
	HttpReadArgs args;
	char		path[MAXPGPATH];
	int			slot;
	MemoryContext old;

	if (!buildlog_http_readers_running())
		return false;
	old = MemoryContextSwitchTo(h->group_cxt);
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		GroupWrite *g = writes[i];
		GroupFileWrite fw = {g->job_id, g->serial, g->raw_end, g->next_number,
		(int32) g->scope, g->batch.n};

		appendBinaryStringInfo(&buf, (char *) &fw, sizeof(fw));
		for (int j = 0; j < g->batch.n; j++)
		{
			text	   *t = (text *) DatumGetPointer(g->batch.contents[j]);
			GroupFilePart fp;

			memset(&fp, 0, sizeof(fp));
			fp.number = DatumGetInt32(g->batch.numbers[j]);
			fp.len = VARSIZE_ANY_EXHDR(t);
			fp.final = DatumGetBool(g->batch.finals[j]);
			appendBinaryStringInfo(&buf, (char *) &fp, sizeof(fp));
			appendBinaryStringInfo(&buf, VARDATA_ANY(t), fp.len);
		}
	}
	MemoryContextSwitchTo(old);
	memset(&args, 0, sizeof(args));
	args.kind = HTTP_WRITE_GROUP;
	args.job_id = ++h->group_seq;
	args.after = n;
	args.start = -1;
	group_path(path, sizeof(path), MyProcPid, args.job_id);
	if (!buildlog_http_write_file(path, buf.data, buf.len))
	{
		buildlog_worker_problem(&h->w, WARNING,
								psprintf("could not write \"%s\" for a group commit: %m", path));
		pfree(buf.data);
		return false;
	}
	pfree(buf.data);
	slot = buildlog_http_read_submit(h, &args, NULL);
	if (slot < 0)
	{
		(void) unlink(path);
		return false;
	}
	h->reads[slot].kind = HTTP_WRITE_GROUP;
	h->group_slot = slot;
	h->group_writes = writes;
	h->group_n = n;
	h->group_inflight_cxt = h->group_cxt;
	h->group_cxt = AllocSetContextCreate(h->w.loop_cxt, "buildlog http group",
										 ALLOCSET_DEFAULT_SIZES);
	return true;
}

/* Read a whole file into cxt (its length in *len); NULL when that failed. */
static char *
read_file(const char *path, MemoryContext cxt, size_t *len)
{
	int			fd = open(path, O_RDONLY | PG_BINARY, 0);
	struct stat st;
	char	   *data = NULL;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0)
	{
		data = MemoryContextAllocHuge(cxt, st.st_size + 1);
		if (!buildlog_http_read_fd(fd, data, st.st_size))
		{
			pfree(data);
			data = NULL;
		}
		*len = st.st_size;
	}
	close(fd);
	return data;
}

void
buildlog_http_group_write(BuildlogWorker *w, const HttpReadArgs *args, int requester,
						  HttpResponse *r)
{
	char		path[MAXPGPATH];
	size_t		len = 0;
	char	   *data;
	const char *p;
	const char *end;
	int			n = args->after;
	GroupWrite **writes = palloc0(sizeof(GroupWrite *) * Max(n, 1));
	GroupFileResult *results;

	group_path(path, sizeof(path), requester, args->job_id);
	data = read_file(path, CurrentMemoryContext, &len);
	(void) unlink(path);
	if (data == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  psprintf("could not read the group file \"%s\"", path));
		return;
	}
	p = data;
	end = data + len;
	for (int i = 0; i < n; i++)
	{
		GroupFileWrite fw;
		GroupWrite *g = palloc0(sizeof(GroupWrite));

		if (end - p < (ssize_t) sizeof(fw))
			elog(ERROR, "group file \"%s\" is short", path);
		memcpy(&fw, p, sizeof(fw));
		p += sizeof(fw);
		g->job_id = fw.job_id;
		g->serial = fw.serial;
		g->raw_end = fw.raw_end;
		g->next_number = fw.next_number;
		g->scope = (TokenScope) fw.scope;
		buildlog_batch_init(&g->batch, fw.n);
		for (int j = 0; j < fw.n; j++)
		{
			GroupFilePart fp;
			text	   *t;

			if (end - p < (ssize_t) sizeof(fp))
				elog(ERROR, "group file \"%s\" is short", path);
			memcpy(&fp, p, sizeof(fp));
			p += sizeof(fp);
			if ((size_t) (end - p) < fp.len)
				elog(ERROR, "group file \"%s\" is short", path);
			t = (text *) palloc(VARHDRSZ + fp.len);
			SET_VARSIZE(t, VARHDRSZ + fp.len);
			memcpy(VARDATA(t), p, fp.len);
			p += fp.len;
			buildlog_batch_add(&g->batch, g->job_id, fp.number, PointerGetDatum(t), fp.final);
		}
		writes[i] = g;
	}
	pfree(data);
	write_groups(w, CurrentMemoryContext, writes, n);
	results = palloc0(sizeof(GroupFileResult) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		results[i].status = writes[i]->status;
		results[i].parts = writes[i]->parts;
		if (writes[i]->title)
			strlcpy(results[i].title, writes[i]->title, sizeof(results[i].title));
		if (writes[i]->detail)
			strlcpy(results[i].detail, writes[i]->detail, sizeof(results[i].detail));
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/octet-stream", (char *) results,
						   sizeof(GroupFileResult) * n);
}

/* The group a reader wrote (slot i) is answered; next says: hand the next one. */
static void
group_done(HttpWorker *h, int i, bool next)
{
	HttpReadSlot head;
	int			fd = buildlog_http_read_take(h, i, &head);
	GroupWrite **writes = h->group_writes;
	int			n = h->group_n;
	MemoryContext cxt = h->group_inflight_cxt;
	GroupFileResult *results = NULL;
	bool		ok = false;

	if (fd >= 0 && head.status == MHD_HTTP_OK &&
		head.body_len == (int64) (sizeof(GroupFileResult) * n))
	{
		results = MemoryContextAlloc(cxt, sizeof(GroupFileResult) * Max(n, 1));
		ok = buildlog_http_read_fd(fd, (char *) results, head.body_len);
	}
	if (fd >= 0)
		close(fd);
	for (int k = 0; k < n; k++)
	{
		GroupWrite *g = writes[k];

		if (ok)
		{
			g->status = results[k].status;
			g->parts = results[k].parts;
			g->title = MemoryContextStrdup(cxt, results[k].title);
			g->detail = MemoryContextStrdup(cxt, results[k].detail);
		}
		else
		{
			g->status = MHD_HTTP_SERVICE_UNAVAILABLE;
			g->title = "Service Unavailable";
			g->detail = "The process writing this upload stopped before it answered: the parts may be stored or not; send them again (a part stored twice is read once).";
		}
	}
	if (!ok)
		buildlog_worker_problem(&h->w, WARNING,
								psprintf("a group commit by an HTTP reader got no answer (status %u)",
										 head.status));
	h->group_slot = -1;
	h->group_writes = NULL;
	h->group_inflight_cxt = NULL;
	writes_done(h, writes, n);
	MemoryContextDelete(cxt);
	if (next)
		buildlog_http_group_commit(h);
}

void
buildlog_http_group_done(HttpWorker *h, int i)
{
	group_done(h, i, true);
}

void
buildlog_http_group_commit(HttpWorker *h)
{
	GroupWrite **writes;
	dlist_mutable_iter it;
	int			n = h->ngroup;
	int			i = 0;

	/* one group at a time: the next one gathers while a reader writes this one */
	if (dlist_is_empty(&h->group) || h->group_slot >= 0)
		return;
	writes = MemoryContextAlloc(h->group_cxt, sizeof(GroupWrite *) * n);
	dlist_foreach_modify(it, &h->group)
	{
		writes[i++] = dlist_container(GroupWrite, node, it.cur);
		dlist_delete(it.cur);
	}
	h->ngroup = 0;
	if (hand_group(h, writes, n))
		return;
	write_groups(&h->w, h->group_cxt, writes, n);
	writes_done(h, writes, n);
	MemoryContextReset(h->group_cxt);
}
