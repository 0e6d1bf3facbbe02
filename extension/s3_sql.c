/*-------------------------------------------------------------------------
 * s3_sql.c
 *	  SQL functions over the S3 client, for operators and tests: the
 *	  signature self-test, and put/get/head/verify of one object with the
 *	  buildlog.s3_* settings.  Not open to PUBLIC.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "guc.h"
#include "s3.h"

PG_FUNCTION_INFO_V1(buildlog_s3_signature_selftest);
PG_FUNCTION_INFO_V1(buildlog_s3_key);
PG_FUNCTION_INFO_V1(buildlog_s3_put_text);
PG_FUNCTION_INFO_V1(buildlog_s3_get);
PG_FUNCTION_INFO_V1(buildlog_s3_head);
PG_FUNCTION_INFO_V1(buildlog_s3_verify);
PG_FUNCTION_INFO_V1(buildlog_s3_client_stats);

/* A text repeated n times, read in slices (tests upload large bodies). */
typedef struct RepeatSource
{
	S3Source	body_source;
	S3DatumSource body;
	int			times;
	int			left;
} RepeatSource;

/* A result row under construction. */
typedef struct Row
{
	Datum		values[8];
	bool		nulls[8];
	int			n;
} Row;

/* fill() of a RepeatSource: the body's slices, over again until done. */
static Size
repeat_fill(void *arg, char *buf, Size cap)
{
	RepeatSource *r = (RepeatSource *) arg;

	for (;;)
	{
		Size		n = r->body_source.fill(r->body_source.arg, buf, cap);

		if (n > 0)
			return n;
		if (--r->left <= 0 || r->body.size == 0)
			return 0;
		buildlog_s3_datum_source_rewind(&r->body);
	}
}

/* Start a RepeatSource over again (between the digest and the put). */
static void
repeat_rewind(RepeatSource *r)
{
	buildlog_s3_datum_source_rewind(&r->body);
	r->left = r->times;
}

/* Add a column, NULL unless present. */
static void
col(Row *row, bool present, Datum value)
{
	Assert(row->n < lengthof(row->values));
	row->values[row->n] = present ? value : (Datum) 0;
	row->nulls[row->n] = !present;
	row->n++;
}

/* Add a text column, NULL when empty. */
static void
col_text(Row *row, const char *s)
{
	col(row, s[0] != '\0', s[0] ? CStringGetTextDatum(s) : (Datum) 0);
}

/* The composite result of the function. */
static Datum
row_datum(FunctionCallInfo fcinfo, Row *row)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
											 row->values, row->nulls));
}

/* s3_signature_selftest(): AWS's examples, as libcurl signed them. */
Datum
buildlog_s3_signature_selftest(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"GET Object", "PUT Object"};
	static const S3SelfTest cases[] = {S3_SELFTEST_GET_OBJECT, S3_SELFTEST_PUT_OBJECT};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i < lengthof(cases); i++)
	{
		char	   *authorization = buildlog_s3_selftest(cases[i]);
		char	   *signature = strstr(authorization, "Signature=");
		Datum		values[3];
		bool		nulls[3] = {false, signature == NULL, false};

		values[0] = CStringGetTextDatum(names[i]);
		values[1] = signature ? CStringGetTextDatum(signature + 10) : (Datum) 0;
		values[2] = CStringGetTextDatum(authorization);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* s3_key(job_id): where the archive worker stores a job's log. */
Datum
buildlog_s3_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(buildlog_s3_key_for_job(buildlog_s3_prefix,
															 PG_GETARG_INT64(0))));
}

/* s3_put_text(key, body, gzip, repeat): upload body repeated, in slices. */
Datum
buildlog_s3_put_text(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		gzip = PG_GETARG_BOOL(2);
	int			times = PG_GETARG_INT32(3);
	S3Target	target;
	RepeatSource repeat;
	S3Source	source = {repeat_fill, &repeat};
	S3Digest	digest;
	S3Result	result;
	Row			row = {0};

	if (times < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("repeat must be at least 1")));
	buildlog_s3_target(&target);
	buildlog_s3_datum_source(&repeat.body_source, &repeat.body, PG_GETARG_DATUM(1));
	repeat.times = times;
	repeat_rewind(&repeat);
	buildlog_s3_digest(&source, gzip, &digest);
	repeat_rewind(&repeat);
	buildlog_s3_request_put(&target, key, &source, gzip, &digest, &result);
	if (result.outcome != S3_OK)
		buildlog_s3_report(ERROR, "upload", key, &result);

	col(&row, true, Int32GetDatum((int32) result.status));
	col(&row, true, Int64GetDatum((int64) digest.size));
	col_text(&row, digest.sha256);
	col_text(&row, digest.md5);
	col_text(&row, result.etag);
	return row_datum(fcinfo, &row);
}

/* Sink appending to a StringInfo (s3_get). */
static void
append_sink(void *arg, const char *data, Size len)
{
	appendBinaryStringInfo((StringInfo) arg, data, (int) len);
}

/* s3_get(key, decode): the object's bytes, gunzipped when decode. */
Datum
buildlog_s3_get(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		decode = PG_GETARG_BOOL(1);
	StringInfoData buf;
	S3Sink		sink = {append_sink, &buf};
	S3Target	target;
	S3Result	result;
	bytea	   *out;

	buildlog_s3_target(&target);
	initStringInfo(&buf);
	buildlog_s3_request_get(&target, key, decode, &sink, &result);
	if (result.outcome != S3_OK)
		buildlog_s3_report(ERROR, "read", key, &result);
	out = (bytea *) palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(out, VARHDRSZ + buf.len);
	memcpy(VARDATA(out), buf.data, buf.len);
	PG_RETURN_BYTEA_P(out);
}

/* Add the status and outcome columns of a request; whether it succeeded. */
static bool
col_outcome(Row *row, const S3Result *result)
{
	col(row, result->status != 0, Int32GetDatum((int32) result->status));
	col_text(row, buildlog_s3_outcome_name(result->outcome));
	return result->outcome == S3_OK;
}

/* s3_head(key): the object's facts, or why there are none (no ERROR). */
Datum
buildlog_s3_head(PG_FUNCTION_ARGS)
{
	S3Target	target;
	S3Result	result;
	Row			row = {0};

	buildlog_s3_target(&target);
	buildlog_s3_request_head(&target, text_to_cstring(PG_GETARG_TEXT_PP(0)),
							 &result);
	col_outcome(&row, &result);
	col(&row, result.outcome == S3_OK && result.content_length >= 0,
		Int64GetDatum(result.content_length));
	col_text(&row, result.etag);
	col_text(&row, result.content_type);
	col_text(&row, result.content_encoding);
	col_text(&row, result.meta_sha256);
	col_text(&row, result.error);
	return row_datum(fcinfo, &row);
}

/* s3_verify(key): GET the object and checksum it, keeping nothing (no ERROR). */
Datum
buildlog_s3_verify(PG_FUNCTION_ARGS)
{
	S3Target	target;
	S3Result	result;
	bool		ok;
	Row			row = {0};

	buildlog_s3_target(&target);
	buildlog_s3_request_get(&target, text_to_cstring(PG_GETARG_TEXT_PP(0)),
							true, NULL, &result);
	ok = col_outcome(&row, &result);
	col(&row, ok, Int64GetDatum((int64) result.received.size));
	col(&row, ok, ok ? CStringGetTextDatum(result.received.sha256) : (Datum) 0);
	col(&row, ok, ok ? CStringGetTextDatum(result.received.md5) : (Datum) 0);
	col_text(&row, result.meta_sha256);
	col(&row, ok, Int64GetDatum((int64) result.sink_bytes));
	col_text(&row, result.error);
	return row_datum(fcinfo, &row);
}

/* s3_client_stats(): requests and GET body bytes of this session's client. */
Datum
buildlog_s3_client_stats(PG_FUNCTION_ARGS)
{
	Row			row = {0};

	col(&row, true, Int64GetDatum((int64) buildlog_s3_counters.requests));
	col(&row, true, Int64GetDatum((int64) buildlog_s3_counters.received_bytes));
	return row_datum(fcinfo, &row);
}
