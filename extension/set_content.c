/*-------------------------------------------------------------------------
 * set_content.c
 *	  set_content(job_id, content, removed_by): replace or clear a log.
 *
 * Travis semantics for a job restart (new content, usually NULL) or a log
 * removal by a user: pending parts are discarded, the content and its part
 * bookkeeping replaced, the archive state reset.  Parts written afterwards
 * are placed after the new content, in number order.
 *
 * A log whose archive object may exist (archive_object) gets a pending
 * deletion: the archive workers delete the object and prove it gone, off
 * the caller's path; the new content (if any) is archived only after that.
 * purged_at is cleared, so no reader or aggregation ever restores the old
 * archive of a removed log.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"

#include "job_secrets.h"
#include "merge.h"
#include "joblock.h"
#include "spiutil.h"
#include "stream_offsets.h"

PG_FUNCTION_INFO_V1(buildlog_set_content);

static SPIPlanPtr discard_plan = NULL;
static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr row_lock_plan = NULL;

/* set_content() returns how many pending parts it discarded. */
Datum
buildlog_set_content(PG_FUNCTION_ARGS)
{
	int64		job_id;
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	uint64		discarded;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	if (job_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job id must be positive"),
				 errdetail("job_id is " INT64_FORMAT ".", job_id)));
	values[0] = Int64GetDatum(job_id);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';

	SPI_connect();
	/*
	 * Row before job (as aggregate()): an archive worker's S3 request holds
	 * the row; writers must not queue behind our job lock meanwhile.
	 */
	buildlog_run(buildlog_plan(&row_lock_plan,
							   "select 1 from buildlog.logs where job_id = $1 for update",
							   1, types),
				 values, NULL, false, SPI_OK_SELECT);
	buildlog_lock_job_exclusive(job_id);
	buildlog_run(buildlog_plan(&discard_plan,
							   "delete from buildlog.log_parts where job_id = $1",
							   1, types),
				 values, NULL, false, SPI_OK_DELETE);
	discarded = SPI_processed;
	if (!PG_ARGISNULL(1))
		values[1] = PointerGetDatum(buildlog_mask_job_text(job_id,
														   PG_GETARG_TEXT_PP(1)));
	/* an archive object may hold the old text: the archive workers delete it */
	buildlog_run(buildlog_plan(&upsert_plan,
							   "insert into buildlog.logs as l (job_id, content,"
							   " removed_at, removed_by)"
							   " values ($1, $2, case when $3 is null then null"
							   " else now() end, $3)"
							   " on conflict (job_id) do update set"
							   " content = excluded.content,"
							   " part_numbers = '{}', part_starts = '{}', part_arrivals = '{}',"
							   " final_number = null, aggregated_at = null,"
							   " updated_at = now(), "
							   ARCHIVE_RESET_SQL ","
							   " removed_at = excluded.removed_at,"
							   " removed_by = excluded.removed_by,"
							   " archive_delete_since = case when l.archive_object"
							   " then coalesce(l.archive_delete_since, now())"
							   " else l.archive_delete_since end,"
							   " archive_delete_attempts = case when l.archive_object"
							   " and l.archive_delete_since is null then 0"
							   " else l.archive_delete_attempts end",
							   3, types),
				 values, nulls, false, SPI_OK_INSERT);
	/* a stream resuming after this starts from the new text */
	buildlog_stream_offsets_forget(job_id);
	/* a removed log's secrets go with it */
	if (!PG_ARGISNULL(2))
		buildlog_job_secrets_forget(job_id);
	SPI_finish();
	PG_RETURN_INT64((int64) discarded);
}
