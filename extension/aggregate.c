/*-------------------------------------------------------------------------
 * aggregate.c
 *	  aggregate(job_id): move a job's pending parts into logs.content.
 *
 * The parts merged are exactly the rows the DELETE ... RETURNING removed,
 * so a part committed concurrently is either merged now or stays pending
 * for the next run: nothing is lost, nothing doubled.  The job's exclusive
 * lock (joblock.c) waits for in-flight writers of the same job, so their
 * parts are merged now rather than later.  Late parts of a purged log are
 * merged into its full text, restored from the S3 archive; the new content
 * is archived, verified and purged again by the archive workers.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"

#include "job_secrets.h"
#include "merge.h"
#include "joblock.h"
#include "restore.h"
#include "spiutil.h"

PG_FUNCTION_INFO_V1(buildlog_aggregate);

static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr peek_plan = NULL;
static SPIPlanPtr row_lock_plan = NULL;
static SPIPlanPtr pending_plan = NULL;
static SPIPlanPtr delete_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

/* Read and row-lock the job's logs row; found=false when it has none. */
void
buildlog_lock_stored_log(int64 job_id, StoredLog *log)
{
	buildlog_run_by_id(&lock_plan,
					   lock_plan ? NULL : buildlog_stored_log_sql(" where job_id = $1 for update"),
					   job_id, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		memset(log, 0, sizeof(*log));
		log->final_number = -1;
		return;
	}
	buildlog_stored_log(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, log);
}

/*
 * Row-lock the job's logs row before the job's lock: an archive worker
 * holds the row during an S3 request, and writers must not queue behind
 * our job lock while we wait for it.  Lock order everywhere: row, job.
 */
static void
lock_row_first(int64 job_id)
{
	buildlog_run_by_id(&row_lock_plan,
					   "select 1 from buildlog.logs where job_id = $1 for update",
					   job_id, false, SPI_OK_SELECT);
}

/* The pending parts in SPI_tuptable (PENDING_PART_COLUMNS), palloc'd. */
static LogPart *
spi_parts(void)
{
	LogPart    *p = palloc(sizeof(LogPart) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
		buildlog_pending_part(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &p[i]);
	return p;
}

/* Read the job's deduplicated pending parts without taking them. */
static int
read_pending(int64 job_id, LogPart **parts)
{
	buildlog_run_by_id(&pending_plan,
					   "select " PENDING_PART_COLUMNS
					   " from buildlog.log_parts where job_id = $1",
					   job_id, false, SPI_OK_SELECT);
	*parts = spi_parts();
	return buildlog_dedupe_pending(*parts, (int) SPI_processed);
}

/*
 * Without any lock: is the log purged with parts new to it?  Then download
 * its archive now (true), before aggregation takes the job's lock.
 */
static bool
prefetch_purged(int64 job_id, RestoredLog *restored)
{
	StoredLog	log;
	LogPart    *pending;
	int			npending;

	buildlog_run_by_id(&peek_plan,
					   peek_plan ? NULL : buildlog_stored_log_sql(" where job_id = $1"),
					   job_id, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	buildlog_stored_log(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &log);
	if (!log.purged)
		return false;
	npending = read_pending(job_id, &pending);
	if (buildlog_count_new(&log, pending, npending) == 0)
		return false;			/* duplicates only: dropped without a download */
	buildlog_restore_download(job_id, restored);
	return true;
}

/*
 * Under the lock: may a purged log be merged now?  Yes when nothing new is
 * pending (duplicates are dropped) or the download is of its current
 * archive.  *use_download says whether to merge into the download.
 */
static bool
purged_mergeable(int64 job_id, const StoredLog *log, bool prefetched,
				 const RestoredLog *restored, bool *use_download)
{
	LogPart    *pending;
	int			npending = read_pending(job_id, &pending);
	ArchiveFacts facts;

	*use_download = false;
	if (buildlog_count_new(log, pending, npending) == 0)
		return true;
	if (!prefetched)
		return false;
	buildlog_archive_facts(job_id, &facts);
	if (strcmp(facts.sha256, restored->sha256) != 0)
		return false;
	*use_download = true;
	return true;
}

/* Delete the job's pending parts and return exactly those rows. */
static int
take_pending(int64 job_id, LogPart **parts)
{
	buildlog_run_by_id(&delete_plan,
					   "delete from buildlog.log_parts where job_id = $1"
					   " returning " PENDING_PART_COLUMNS,
					   job_id, false, SPI_OK_DELETE_RETURNING);
	*parts = spi_parts();
	return (int) SPI_processed;
}

/* Write the merged log back (or create the row if the job had none). */
static void
store_log(int64 job_id, bool exists, const AssembledLog *a)
{
	Oid			types[6] = {INT8OID, TEXTOID, INT4ARRAYOID, INT4ARRAYOID, INT4OID,
	TIMESTAMPTZARRAYOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job_id);
	values[1] = PointerGetDatum(a->content);
	values[2] = PointerGetDatum(a->numbers);
	values[3] = PointerGetDatum(a->starts);
	values[4] = Int32GetDatum(a->final_number);
	values[5] = PointerGetDatum(a->arrivals);
	if (a->final_number < 0)
		nulls[4] = 'n';

	if (exists)
		buildlog_run(buildlog_plan(&update_plan,
								   "update buildlog.logs set content = $2,"
								   " part_numbers = $3, part_starts = $4, part_arrivals = $6,"
								   " final_number = $5, aggregated_at = now(),"
								   " updated_at = now(), aggregate_failures = 0,"
								   " aggregate_error = null, aggregate_retry_at = null, "
								   ARCHIVE_RESET_SQL
								   " where job_id = $1",
								   6, types),
					 values, nulls, false, SPI_OK_UPDATE);
	else
		buildlog_run(buildlog_plan(&insert_plan,
								   "insert into buildlog.logs (job_id, content,"
								   " part_numbers, part_starts, final_number,"
								   " aggregated_at, part_arrivals) values ($1, $2, $3, $4, $5, now(), $6)",
								   6, types),
					 values, nulls, false, SPI_OK_INSERT);
}

/* aggregate(job_id) returns the number of parts merged, NULL if unknown. */
Datum
buildlog_aggregate(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	StoredLog	log;
	LogPart    *pending;
	LogPart    *seq;
	int			npending;
	int			n;
	int			merged = 0;
	bool		known;
	bool		prefetched;
	bool		use_download = false;
	RestoredLog restored;

	SPI_connect();
	/* S3 first, with no lock held: writers never wait for it */
	prefetched = prefetch_purged(job_id, &restored);
	lock_row_first(job_id);
	buildlog_lock_job_exclusive(job_id);
	buildlog_lock_stored_log(job_id, &log);
	if (log.purged &&
		!purged_mergeable(job_id, &log, prefetched, &restored, &use_download))
	{
		/* purged or re-archived since the download: the next call merges */
		ereport(DEBUG1,
				(errmsg("archive of job " INT64_FORMAT " changed during aggregation; parts left pending",
						job_id)));
		SPI_finish();
		PG_RETURN_INT32(0);
	}
	npending = take_pending(job_id, &pending);
	known = log.found || npending > 0;
	if (npending > 0)
	{
		AssembledLog a;

		npending = buildlog_dedupe_pending(pending, npending);
		/* duplicates of a purged log's parts are dropped without a download */
		if (log.purged && buildlog_count_new(&log, pending, npending) == 0)
		{
			SPI_finish();
			PG_RETURN_INT32(0);
		}
		/* a late part of a purged log joins the full log, restored from S3 */
		if (log.purged)
		{
			if (!use_download)	/* writers wait for our lock: cannot happen */
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("new parts of purged job " INT64_FORMAT " appeared under its lock",
								job_id)));
			buildlog_restore_apply(job_id, &log, &restored);
		}
		n = buildlog_merge(&log, pending, npending, -1, &seq, &merged);
		if (merged > 0 || !log.found)
		{
			a = buildlog_assemble(&log, seq, n);
			/* the joined text: a secret cut across two parts is whole here */
			buildlog_mask_assembled(job_id, &a);
			store_log(job_id, log.found, &a);
		}
	}
	SPI_finish();
	if (!known)
		PG_RETURN_NULL();
	PG_RETURN_INT32(merged);
}
