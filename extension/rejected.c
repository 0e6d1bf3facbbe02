/*-------------------------------------------------------------------------
 * rejected.c
 *	  Storing rejected deliveries and replaying them once fixed.
 *
 * A delivery that cannot become a part (not JSON, no id, bad base64, too
 * large, ...) is written to buildlog.rejected_parts in the same transaction
 * as the good parts of its batch and acked with them, so it neither blocks
 * nor reorders good data.  replay_rejected() parses the stored (or a fixed)
 * body with the drain's own parser (the scanner, then jansson) and writes it
 * through the ingest path.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "wire.h"
#include "guc.h"
#include "ingest.h"
#include "job_secrets.h"
#include "rejected.h"
#include "spiutil.h"

PG_FUNCTION_INFO_V1(buildlog_replay_rejected);
PG_FUNCTION_INFO_V1(buildlog_parse_message);

static SPIPlanPtr store_plan = NULL;
static SPIPlanPtr fetch_plan = NULL;
static SPIPlanPtr mark_plan = NULL;

void
buildlog_store_rejected(Datum *arrays)
{
	Oid			types[7] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT8ARRAYOID, BOOLARRAYOID, TEXTARRAYOID, BYTEAARRAYOID};

	/* a kept-aside body is masked with the secrets of the job it names */
	arrays[6] = buildlog_mask_rejected_bodies(arrays[6]);
	SPI_connect();
	buildlog_run(buildlog_plan(&store_plan,
							   "insert into buildlog.rejected_parts"
							   " (queue, exchange, routing_key, delivery_tag,"
							   " redelivered, reason, body)"
							   " select * from unnest($1, $2, $3, $4, $5, $6, $7)",
							   7, types),
				 arrays, NULL, false, SPI_OK_INSERT);
	SPI_finish();
}

/* Read the stored body of a rejected delivery; errors when unknown. */
static bytea *
stored_body(int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	bool		isnull;
	Datum		body;

	buildlog_run(buildlog_plan(&fetch_plan,
							   "select body from buildlog.rejected_parts"
							   " where id = $1 for update",
							   1, types),
				 values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("rejected delivery " INT64_FORMAT " does not exist", id)));
	body = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetByteaPCopy(body);
}

/*
 * replay_rejected(id, fixed_body default null): parse the stored body, or
 * the fixed one, and write the part; marks the row replayed.
 */
Datum
buildlog_replay_rejected(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	bytea	   *body;
	ParsedPart	part;
	PartBatch	batch;
	Oid			types[2] = {INT8OID, BYTEAOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	SPI_connect();
	body = PG_ARGISNULL(1) ? stored_body(id) : PG_GETARG_BYTEA_PP(1);
	if (!PG_ARGISNULL(1))
		(void) stored_body(id);	/* checks the row exists, locks it */
	buildlog_parse_part(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
						buildlog_max_part_bytes, false, &part);
	if (!part.ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("rejected delivery " INT64_FORMAT " is still not a valid log part", id),
				 errdetail("%s", part.reason),
				 errhint("Pass a corrected body: buildlog.replay_rejected(id, fixed_body).")));

	buildlog_batch_init(&batch, 1);
	buildlog_batch_add(&batch, part.job_id, part.number, PointerGetDatum(part.content), part.final);
	buildlog_ingest_batch(&batch);

	values[0] = Int64GetDatum(id);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PointerGetDatum(body);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	buildlog_run(buildlog_plan(&mark_plan,
							   "update buildlog.rejected_parts set replayed_at = now(),"
							   " fixed_body = $2 where id = $1",
							   2, types),
				 values, nulls, false, SPI_OK_UPDATE);
	SPI_finish();
	PG_RETURN_INT64(part.job_id);
}

/*
 * parse_message(body, reference default false): what the drain would make
 * of a delivery body, without writing anything.  For operators checking a
 * fixed body before replaying it, and for tests comparing the fast scanner
 * with jansson alone (reference: extension/wire_json.c).  replaced is the
 * number of U+FFFD substitutions in the content.
 */
Datum
buildlog_parse_message(PG_FUNCTION_ARGS)
{
	bytea	   *body = PG_GETARG_BYTEA_PP(0);
	bool		reference = PG_GETARG_BOOL(1);
	ParsedPart	part;
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	buildlog_parse_part(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body),
						buildlog_max_part_bytes, reference, &part);
	values[0] = BoolGetDatum(part.ok);
	values[1] = Int64GetDatum(part.job_id);
	values[2] = Int32GetDatum(part.number);
	values[3] = BoolGetDatum(part.final);
	values[4] = PointerGetDatum(part.content);
	values[5] = CStringGetTextDatum(part.reason);
	values[6] = Int32GetDatum(part.replaced);
	nulls[1] = nulls[2] = nulls[3] = nulls[4] = nulls[6] = !part.ok;
	nulls[5] = part.ok;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
