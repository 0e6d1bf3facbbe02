/*-------------------------------------------------------------------------
 * reads.c
 *	  GET /jobs/{id}/log and GET /jobs/{id}/parts: what a read asks for
 *	  (parsed from the request by the HTTP worker) and the step that answers
 *	  it from the read path (fetch(), parts()).
 *
 * The step runs in a reader process (reader_pool.c) when
 * buildlog.http_readers > 0, so a big log or a purged one fetched from S3
 * never holds up the worker that serves every connection; with 0 readers
 * the HTTP worker runs it itself.  Either way the answer is the same.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>

#include "catalog/pg_type.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "ansi.h"
#include "http/reads.h"
#include "http/viewer.h"
#include "merge.h"
#include "spiutil.h"

/*
 * The number of job $1's final part: the merged final part, else the
 * highest pending part flagged final, else -1 (HEAD_NUMBER) for a log set
 * whole (text, no numbered part: its head is final, see merge.h); NULL
 * while none is stored.
 */
#define FINAL_NUMBER_SQL \
	"select coalesce((select final_number from buildlog.logs where job_id = $1)," \
	" (select max(number) from buildlog.log_parts where job_id = $1 and final)," \
	" (select -1 from buildlog.logs l where l.job_id = $1" \
	"   and (pg_catalog.octet_length(l.content) > 0" \
	"        or (l.content is null and l.purged_at is not null and l.archive_size > 0))" \
	"   and pg_catalog.cardinality(l.part_numbers) = 0" \
	"   and not exists (select from buildlog.log_parts p where p.job_id = $1)))"

static SPIPlanPtr log_plan = NULL;
static SPIPlanPtr parts_plan = NULL;
static SPIPlanPtr events_plan = NULL;
static SPIPlanPtr final_plan = NULL;
static SPIPlanPtr end_plan = NULL;

/* The byte offset N of "Range: bytes=N-"; -1 without one (or another form). */
static int64
range_start(const char *range)
{
	const char *p = "";
	int64		n;

	if (range == NULL || strncmp(range, "bytes=", 6) != 0)
		return -1;
	n = buildlog_http_parse_offset(range + 6, &p);
	return n >= 0 && *p == '-' && p[1] == '\0' ? n : -1;
}

bool
buildlog_http_read_args(struct MHD_Connection *conn, HttpReadKind kind, int64 job_id,
						HttpReadArgs *args, HttpResponse *r)
{
	const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
	const char *deansi = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "deansi");
	const char *bytes = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "bytes");
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												  MHD_HTTP_HEADER_IF_NONE_MATCH);

	memset(args, 0, sizeof(*args));
	args->kind = kind;
	args->job_id = job_id;
	args->start = range_start(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
														  MHD_HTTP_HEADER_RANGE));
	args->after = -1;
	args->deansi = deansi != NULL && strcmp(deansi, "1") == 0;
	args->index_only = bytes != NULL && strcmp(bytes, "0") == 0;
	/* an ETag of ours is 34 bytes; a longer one cannot match */
	if (inm != NULL && strlen(inm) < sizeof(args->if_none_match))
		strlcpy(args->if_none_match, inm, sizeof(args->if_none_match));
	else if (inm != NULL)
		strlcpy(args->if_none_match, "-", sizeof(args->if_none_match));
	if (kind == HTTP_READ_PARTS && after != NULL)
	{
		int64		v;

		if (!buildlog_http_parse_int(after, -1, PG_INT32_MAX, &v))
		{
			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  "after must be a part number (an integer from -1 to 2147483647).");
			return false;
		}
		args->after = (int32) v;
	}
	return true;
}

/* The answer to GET /jobs/{id}/log from what the step read. */
static void
answer_log(HttpResponse *r, const HttpReadArgs *args, bool known, bool removed,
		   bool complete, text *log)
{
	char	   *bytes;
	size_t		size;
	char		md5[MD5_DIGEST_LENGTH * 2 + 1];
	char		etag[MD5_DIGEST_LENGTH * 2 + 3];
	char		number[32];
	const char *errstr = NULL;
	int64		start = args->start;

	if (!known)
	{
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
		return;
	}
	if (removed && log == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_GONE, "Gone", "The log of this job was removed.");
		return;
	}
	bytes = log ? VARDATA_ANY(log) : "";
	size = log ? VARSIZE_ANY_EXHDR(log) : 0;
	if (args->deansi)
	{
		char	   *plain = MemoryContextAlloc(r->cxt, Max(size, 1));

		size = buildlog_strip_ansi(bytes, size, plain);
		bytes = plain;
	}
	if (!pg_md5_hash(bytes, size, md5, &errstr))
		ereport(ERROR, (errmsg("could not compute the ETag: %s", errstr)));
	snprintf(etag, sizeof(etag), "\"%s\"", md5);
	snprintf(number, sizeof(number), "%zu", size);

	buildlog_http_add_header(r, "ETag", etag);
	buildlog_http_add_header(r, "X-Log-Size", number);
	buildlog_http_add_header(r, "X-Log-Complete", complete ? "true" : "false");
	buildlog_http_add_header(r, "Accept-Ranges", "bytes");
	if (strcmp(args->if_none_match, etag) == 0)
	{
		buildlog_http_set_body(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0);
		return;
	}
	if (start < 0)
	{
		buildlog_http_set_body(r, MHD_HTTP_OK, "text/plain; charset=utf-8", bytes, size);
		return;
	}
	if ((uint64) start >= size)
	{
		char		range[64];

		snprintf(range, sizeof(range), "bytes */%zu", size);
		buildlog_http_add_header(r, "Content-Range", range);
		buildlog_http_problem(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, "Range Not Satisfiable",
							  psprintf("The log has %zu bytes so far; ask again from an offset below that.", size));
		return;
	}
	{
		char		range[96];

		snprintf(range, sizeof(range), "bytes " INT64_FORMAT "-%zu/%zu", start, size - 1, size);
		buildlog_http_add_header(r, "Content-Range", range);
	}
	buildlog_http_set_body(r, MHD_HTTP_PARTIAL_CONTENT, "text/plain; charset=utf-8",
						   bytes + start, size - (size_t) start);
}

/*
 * GET /jobs/{id}/log: the log from fetch() (pending parts, content or the
 * S3 archive), whether the final part is stored, and whether the log was
 * removed; then the bytes asked for.
 */
static void
read_log(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	bool		isnull;
	bool		known;
	bool		complete;
	bool		removed;
	text	   *log = NULL;
	Datum		d;
	MemoryContext old;

	if (!buildlog_http_begin_read("buildlog http: GET /jobs/{id}/log", r))
		return;
	buildlog_run_by_id(&log_plan,
					   "select l.job_id is not null, buildlog.fetch($1),"
					   " (" FINAL_NUMBER_SQL ") is not null,"
					   " l.removed_at is not null and l.content is null"
					   " from (select 1) one"
					   " left join buildlog.logs l on l.job_id = $1",
					   args->job_id, true, SPI_OK_SELECT);
	known = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!isnull)
	{
		old = MemoryContextSwitchTo(w->step_cxt);
		log = DatumGetTextPCopy(d);
		MemoryContextSwitchTo(old);
	}
	complete = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	removed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)) &&
		!isnull;
	/* the rest inside the transaction too: pg_md5_hash needs a resource owner */
	old = MemoryContextSwitchTo(w->step_cxt);
	answer_log(r, args, known, removed, complete, log);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
}

/*
 * GET /jobs/{id}/parts?after=N: the parts numbered above N, one per
 * number, in order (parts(job, after)), as JSON.
 */
static void
read_parts(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(args->job_id), Int32GetDatum(args->after)};
	bool		isnull;
	Datum		d;
	MemoryContext old;
	char	   *json;

	if (!buildlog_http_begin_read("buildlog http: GET /jobs/{id}/parts", r))
		return;
	buildlog_run(buildlog_plan(&parts_plan,
							   "select (select true from buildlog.logs where job_id = $1),"
							   " pg_catalog.json_build_object('job_id', $1, 'log_parts',"
							   "  coalesce(pg_catalog.json_agg(pg_catalog.json_build_object("
							   "   'number', p.number, 'content', p.content, 'final', p.final,"
							   "   'created_at', p.created_at) order by p.number), '[]'))::text"
							   " from buildlog.parts($1, $2) p",
							   2, types),
				 values, NULL, true, SPI_OK_SELECT);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
	{
		buildlog_worker_commit_spi();
		MemoryContextSwitchTo(w->step_cxt);
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found", "No log is known for this job.");
		return;
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	old = MemoryContextSwitchTo(w->step_cxt);
	json = TextDatumGetCString(d);
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/json", json, strlen(json));
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
}

/*
 * Append one record of an events answer (see http.h's HttpEventRecord):
 * the part's content as a JSON string, escaped here in the reader, so the
 * HTTP worker only frames it.
 */
static void
append_record(StringInfo buf, int32 number, bool final, text *content)
{
	HttpEventRecord rec;
	int			at = buf->len;
	char	   *cstr = text_to_cstring(content);

	memset(&rec, 0, sizeof(rec));
	rec.number = number;
	rec.final = final;
	appendBinaryStringInfo(buf, (char *) &rec, sizeof(rec));
	escape_json(buf, cstr);
	pfree(cstr);
	rec.len = (uint32) (buf->len - at - sizeof(rec));
	memcpy(buf->data + at, &rec, sizeof(rec));
}

/*
 * The number of the job's final part (-1: the head of a log set whole);
 * false while none is stored.  A stream resumed past it must still learn
 * it to end.
 */
static bool
final_number(int64 job_id, int32 *final)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	Datum		d;

	buildlog_run(buildlog_plan(&final_plan, FINAL_NUMBER_SQL, 1, types),
				 values, NULL, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		*final = DatumGetInt32(d);
	return !isnull;
}

/* The end of an events answer: size and SHA-256 of the whole log. */
static void
append_end_record(StringInfo buf, int64 job_id, int32 final)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	char	   *sha;
	HttpEventRecord rec;
	HttpEventEnd end;

	buildlog_run(buildlog_plan(&end_plan,
							   "select pg_catalog.octet_length(l),"
							   " pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(l, 'UTF8')), 'hex')"
							   " from buildlog.fetch($1) l", 1, types),
				 values, NULL, true, SPI_OK_SELECT);
	memset(&rec, 0, sizeof(rec));
	rec.number = HTTP_EVENT_END;
	memset(&end, 0, sizeof(end));
	end.final_number = final;
	end.size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sha = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	strlcpy(end.sha256, sha, sizeof(end.sha256));
	appendBinaryStringInfo(buf, (char *) &rec, sizeof(rec));
	appendBinaryStringInfo(buf, (char *) &end, sizeof(end));
}

/*
 * An event stream's parts above after (its received prefix 0..after), as
 * records; then, when the log is complete in this snapshot (its final part
 * stored and no number below missing), the end record, else a record with
 * just the final number (or none).
 */
static void
read_events(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(args->job_id), Int32GetDatum(args->after)};
	StringInfoData buf;
	int64		next = (int64) args->after + 1; /* the first number missing */
	bool		gap = false;	/* a part read after a missing number */
	bool		gap_below_last = false; /* ... other than travis' "last" */
	bool		has_final = false;
	int32		final = -1;
	MemoryContext old;

	if (!buildlog_http_begin_read("buildlog http: GET /jobs/{id}/events", r))
		return;
	buildlog_run(buildlog_plan(&events_plan,
							   "select number, content, final from buildlog.parts($1, $2)",
							   2, types),
				 values, NULL, true, SPI_OK_SELECT);
	old = MemoryContextSwitchTo(w->step_cxt);
	initStringInfo(&buf);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		int32		number = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		text	   *content = DatumGetTextPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		bool		is_final = DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));

		append_record(&buf, number, is_final, content);
		if (is_final)
		{
			final = number;
			has_final = true;
		}
		/* the head (-1) comes before part 0; travis' "last" sits apart */
		if (number == HEAD_NUMBER)
			;
		else if (!gap && number == next)
			next++;
		else
		{
			gap = true;
			if (number != PG_INT32_MAX)
				gap_below_last = true;
		}
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	if (!has_final)
		has_final = final_number(args->job_id, &final);
	old = MemoryContextSwitchTo(w->step_cxt);
	/* complete: nothing missing up to the final part (parts after it do not count) */
	if (has_final && (final == PG_INT32_MAX ? !gap_below_last : next > final))
		append_end_record(&buf, args->job_id, final);
	else if (has_final)
	{
		HttpEventRecord rec;
		HttpEventEnd end;

		memset(&rec, 0, sizeof(rec));
		rec.number = HTTP_EVENT_FINAL;
		memset(&end, 0, sizeof(end));
		end.final_number = final;
		appendBinaryStringInfo(&buf, (char *) &rec, sizeof(rec));
		appendBinaryStringInfo(&buf, (char *) &end, sizeof(end));
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/octet-stream", buf.data, buf.len);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
}

void
buildlog_http_read_failed(BuildlogWorker *w, HttpResponse *r)
{
	const char *detail = buildlog_worker_error_detail();

	r->nheaders = 0;
	if (w->sqlerrcode == ERRCODE_CONNECTION_FAILURE)
	{
		/* an archived log whose S3 is unreachable or slow: worth a retry */
		buildlog_http_add_header(r, "Retry-After", "10");
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  psprintf("The log is archived in S3, which did not answer: %s: %s",
									   w->error_message, detail));
	}
	else
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  w->error_message);
}

int
buildlog_http_read_step(BuildlogWorker *w, void *arg)
{
	HttpReadCall *call = (HttpReadCall *) arg;

	if (call->args->kind == HTTP_READ_LOG)
		read_log(w, call->args, call->r);
	else if (call->args->kind == HTTP_READ_PARTS)
		read_parts(w, call->args, call->r);
	else if (call->args->kind == HTTP_READ_BUNDLE)
		buildlog_http_read_bundle(w, call->args, call->r);
	else
		read_events(w, call->args, call->r);
	return 0;
}
