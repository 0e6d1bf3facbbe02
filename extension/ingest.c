/*-------------------------------------------------------------------------
 * ingest.c
 *	  Batch ingestion of log parts and the SQL function write_parts().
 *
 * One INSERT per batch, through a kept plan, with the arrays passed as they
 * are: the statement creates the jobs' logs rows as needed and flags parts
 * of already aggregated logs as "late" so the scheduler merges them soon.
 * Duplicates are stored; readers and aggregation collapse them.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "ingest.h"
#include "job_secrets.h"
#include "live.h"
#include "joblock.h"
#include "spiutil.h"
#include "utf8.h"

PG_FUNCTION_INFO_V1(buildlog_write_parts);
PG_FUNCTION_INFO_V1(buildlog_write_raw_parts);
PG_FUNCTION_INFO_V1(buildlog_clean_utf8);

static SPIPlanPtr insert_plan = NULL;

/*
 * One statement per batch.  It runs with a snapshot taken after the job
 * locks (see buildlog_ingest), so under every isolation level it sees the
 * aggregation or removal that committed before: parts of an aggregated log
 * are flagged late, parts of a removed log are not stored.
 */
#define INSERT_SQL \
	"with new_logs as (" \
	"  insert into buildlog.logs (job_id) select pg_catalog.unnest($5)" \
	"  on conflict (job_id) do nothing)," \
	" state as (" \
	"  select coalesce(pg_catalog.array_agg(job_id)" \
	"           filter (where aggregated_at is not null), '{}') as aggregated," \
	"         coalesce(pg_catalog.array_agg(job_id)" \
	"           filter (where removed_at is not null), '{}') as removed" \
	"  from buildlog.logs where job_id = any ($5))" \
	" insert into buildlog.log_parts (job_id, number, content, final, late)" \
	" select p.job_id, p.number, p.content, p.final, p.job_id = any (s.aggregated)" \
	" from state s," \
	"  unnest($1, $2, $3, $4) as p(job_id, number, content, final)" \
	" where p.job_id <> all (s.removed)"

/* Raise the error for a NULL argument array or element. */
static void
reject_null(const char *argname, int element)
{
	if (element < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not contain NULL elements", argname),
			 errdetail("Element %d of %s is NULL.", element + 1, argname)));
}

/* Number of elements of a one-dimensional array without NULLs. */
static int
checked_length(ArrayType *arr, const char *argname, Oid elemtype)
{
	int			n;

	if (ARR_ELEMTYPE(arr) != elemtype)
		elog(ERROR, "%s has element type %u, expected %u",
			 argname, ARR_ELEMTYPE(arr), elemtype);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (ARR_HASNULL(arr))
	{
		bits8	   *bitmap = ARR_NULLBITMAP(arr);
		int			i;

		for (i = 0; i < n; i++)
			if (!(bitmap[i / 8] & (1 << (i % 8))))
				reject_null(argname, i);
	}
	return n;
}

/* Compare int64 for qsort. */
static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Sorted distinct copy of the job ids, the order locks are taken in. */
static int
distinct_jobs(const int64 *ids, int n, int64 **out)
{
	int64	   *sorted = palloc(sizeof(int64) * Max(n, 1));
	int			m = 0;
	int			i;

	Assert(n > 0);
	for (i = 0; i < n; i++)
		sorted[i] = ids[i];
	qsort(sorted, n, sizeof(int64), cmp_int64);
	for (i = 0; i < n; i++)
		if (m == 0 || sorted[m - 1] != sorted[i])
			sorted[m++] = sorted[i];
	*out = sorted;
	return m;
}

/* Check every element's value; returns the total content bytes. */
static int64
check_values(const int64 *jobs, const int32 *numbers, ArrayType *contents,
			 int n)
{
	int64		bytes = 0;
	char	   *p = ARR_DATA_PTR(contents);
	int			i;

	for (i = 0; i < n; i++)
	{
		Size		len;

		if (jobs[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job id must be positive"),
					 errdetail("Element %d of job_ids is " INT64_FORMAT ".",
							   i + 1, jobs[i])));
		if (numbers[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("part number must not be negative"),
					 errdetail("Element %d of numbers is %d.", i + 1, numbers[i]),
					 errhint("Travis's \"last\" part is number %d.",
							 BUILDLOG_LAST_NUMBER)));
		len = VARSIZE_ANY_EXHDR(p);
		if (len > (Size) buildlog_max_part_bytes)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("log part too large"),
					 errdetail("Element %d of contents (job " INT64_FORMAT ", part %d) has %zu bytes; the limit is %d.",
							   i + 1, jobs[i], numbers[i], len,
							   buildlog_max_part_bytes),
					 errhint("Split the part, or raise buildlog.max_part_bytes.")));
		bytes += len;
		p = att_addlength_pointer(p, -1, p);
		p = (char *) att_align_nominal(p, TYPALIGN_INT);
	}
	return bytes;
}

IngestResult
buildlog_ingest(ArrayType *job_ids, ArrayType *numbers,
				ArrayType *contents, ArrayType *finals)
{
	IngestResult result = {0, 0};
	int			n = checked_length(job_ids, "job_ids", INT8OID);
	int64	   *jobs;
	int			njobs;
	Datum		values[5];
	Oid			types[5] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
	BOOLARRAYOID, INT8ARRAYOID};

	if (checked_length(numbers, "numbers", INT4OID) != n ||
		checked_length(contents, "contents", TEXTOID) != n ||
		checked_length(finals, "finals", BOOLOID) != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("write_parts arrays must have the same length"),
				 errdetail("job_ids has %d elements, numbers %d, contents %d, finals %d.",
						   n,
						   ArrayGetNItems(ARR_NDIM(numbers), ARR_DIMS(numbers)),
						   ArrayGetNItems(ARR_NDIM(contents), ARR_DIMS(contents)),
						   ArrayGetNItems(ARR_NDIM(finals), ARR_DIMS(finals)))));
	if (n == 0)
		return result;

	result.bytes = check_values((int64 *) ARR_DATA_PTR(job_ids),
								(int32 *) ARR_DATA_PTR(numbers), contents, n);
	njobs = distinct_jobs((int64 *) ARR_DATA_PTR(job_ids), n, &jobs);
	buildlog_lock_jobs_shared(jobs, njobs);
	/* secrets masked before the text is stored anywhere (job_secrets.c) */
	contents = buildlog_mask_batch(job_ids, contents, n, jobs, njobs);
	buildlog_live_written(jobs, njobs);

	values[0] = PointerGetDatum(job_ids);
	values[1] = PointerGetDatum(numbers);
	values[2] = PointerGetDatum(contents);
	values[3] = PointerGetDatum(finals);
	values[4] = PointerGetDatum(construct_array(
												(Datum *) jobs, njobs, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));

	SPI_connect();
	/*
	 * A snapshot taken now, after the locks: a REPEATABLE READ transaction's
	 * own snapshot may predate an aggregation that committed meanwhile.
	 */
	if (SPI_execute_snapshot(buildlog_plan(&insert_plan, INSERT_SQL, 5, types),
							 values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 false, true, 0) != SPI_OK_INSERT)
		elog(ERROR, "ingest statement did not insert");
	result.parts = SPI_processed;
	SPI_finish();
	return result;
}

/* Build the write_result row (parts, bytes, replaced). */
static Datum
ingest_result_datum(FunctionCallInfo fcinfo, IngestResult r, int64 replaced)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(r.parts);
	values[1] = Int64GetDatum(r.bytes);
	values[2] = Int64GetDatum(replaced);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
											 values, nulls));
}

/* Fetch argument i as an array, with a clear error when it is NULL. */
static ArrayType *
array_arg(FunctionCallInfo fcinfo, int i, const char *argname)
{
	if (PG_ARGISNULL(i))
		reject_null(argname, -1);
	return PG_GETARG_ARRAYTYPE_P(i);
}

/*
 * write_parts(job_ids, numbers, contents text[], finals): text from SQL is
 * already valid UTF-8 without NUL (the server checked it on input), so it is
 * written as it is.
 */
Datum
buildlog_write_parts(PG_FUNCTION_ARGS)
{
	IngestResult r = buildlog_ingest(array_arg(fcinfo, 0, "job_ids"),
									 array_arg(fcinfo, 1, "numbers"),
									 array_arg(fcinfo, 2, "contents"),
									 array_arg(fcinfo, 3, "finals"));

	return ingest_result_datum(fcinfo, r, 0);
}

/*
 * write_parts(job_ids, numbers, contents bytea[], finals): raw bytes from an
 * untrusted producer, cleaned to UTF-8 first.  Also reports replacements.
 */
Datum
buildlog_write_raw_parts(PG_FUNCTION_ARGS)
{
	ArrayType  *raw = array_arg(fcinfo, 2, "contents");
	int			n = checked_length(raw, "contents", BYTEAOID);
	Datum	   *texts = palloc(sizeof(Datum) * Max(n, 1));
	char	   *p = ARR_DATA_PTR(raw);
	int64		replaced = 0;
	IngestResult r;
	int			i;

	for (i = 0; i < n; i++)
	{
		Utf8Cleaned c = buildlog_utf8_clean(VARDATA_ANY(p),
											VARSIZE_ANY_EXHDR(p));

		texts[i] = PointerGetDatum(cstring_to_text_with_len(c.data, c.len));
		replaced += c.replaced;
		p = att_addlength_pointer(p, -1, p);
		p = (char *) att_align_nominal(p, TYPALIGN_INT);
	}
	r = buildlog_ingest(array_arg(fcinfo, 0, "job_ids"),
						array_arg(fcinfo, 1, "numbers"),
						construct_array(texts, n, TEXTOID, -1, false,
										TYPALIGN_INT),
						array_arg(fcinfo, 3, "finals"));

	return ingest_result_datum(fcinfo, r, replaced);
}

/* clean_utf8(bytea): the ingest cleaning routine, exposed for checks. */
Datum
buildlog_clean_utf8(PG_FUNCTION_ARGS)
{
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	Utf8Cleaned c = buildlog_utf8_clean(VARDATA_ANY(raw),
										VARSIZE_ANY_EXHDR(raw));
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = PointerGetDatum(cstring_to_text_with_len(c.data, c.len));
	values[1] = Int32GetDatum(c.replaced);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

void
buildlog_batch_init(PartBatch *b, int cap)
{
	cap = Max(cap, 1);
	memset(b, 0, sizeof(*b));
	b->cap = cap;
	b->jobs = palloc(sizeof(Datum) * cap);
	b->numbers = palloc(sizeof(Datum) * cap);
	b->contents = palloc(sizeof(Datum) * cap);
	b->finals = palloc(sizeof(Datum) * cap);
}

void
buildlog_batch_add(PartBatch *b, int64 job_id, int32 number, Datum content, bool final)
{
	if (b->n == b->cap)
	{
		/* repalloc keeps each array in the context it was made in */
		b->cap *= 2;
		b->jobs = repalloc(b->jobs, sizeof(Datum) * b->cap);
		b->numbers = repalloc(b->numbers, sizeof(Datum) * b->cap);
		b->contents = repalloc(b->contents, sizeof(Datum) * b->cap);
		b->finals = repalloc(b->finals, sizeof(Datum) * b->cap);
	}
	b->jobs[b->n] = Int64GetDatum(job_id);
	b->numbers[b->n] = Int32GetDatum(number);
	b->contents[b->n] = content;
	b->finals[b->n] = BoolGetDatum(final);
	b->bytes += VARSIZE_ANY_EXHDR(DatumGetPointer(content));
	b->n++;
}

void
buildlog_batch_append(PartBatch *b, const PartBatch *from)
{
	for (int i = 0; i < from->n; i++)
		buildlog_batch_add(b, DatumGetInt64(from->jobs[i]), DatumGetInt32(from->numbers[i]),
						   from->contents[i], DatumGetBool(from->finals[i]));
}

IngestResult
buildlog_ingest_batch(const PartBatch *b)
{
	IngestResult none = {0, 0};

	if (b->n == 0)
		return none;
	return buildlog_ingest(construct_array(b->jobs, b->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE),
						   construct_array(b->numbers, b->n, INT4OID, 4, true, TYPALIGN_INT),
						   construct_array(b->contents, b->n, TEXTOID, -1, false, TYPALIGN_INT),
						   construct_array(b->finals, b->n, BOOLOID, 1, true, TYPALIGN_CHAR));
}
