/*-------------------------------------------------------------------------
 * read.c
 *	  The read path: log(job_id) and parts(job_id, after).
 *
 * Both read the logs row and the pending parts under one snapshot (SPI
 * read-only mode), so a concurrent aggregation is seen entirely or not at
 * all, and both go through the merge aggregation uses.  A purged log is
 * read from its S3 archive (restore.c): one read path, wherever the log lives.
 * parts() of a purged, uncompressed log reads only the byte range of the
 * parts numbered above "after" (none: no S3 request at all); read from the
 * start it reads the whole object (its head included).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "merge.h"
#include "restore.h"
#include "spiutil.h"

PG_FUNCTION_INFO_V1(buildlog_fetch);
PG_FUNCTION_INFO_V1(buildlog_parts);

static SPIPlanPtr stored_plan = NULL;
static SPIPlanPtr pending_plan = NULL;

/* A job's logs row and its pending parts numbered above "after". */
typedef struct LogSnapshot
{
	StoredLog	stored;
	LogPart    *pending;
	int			npending;
} LogSnapshot;

/* Read the row and the deduplicated pending parts in one snapshot. */
static void
read_log(int64 job_id, int32 after, bool ranged, LogSnapshot *snap)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(after)};
	uint64		i;

	buildlog_run(buildlog_plan(&stored_plan,
							   stored_plan ? NULL : buildlog_stored_log_sql(" where job_id = $1"),
							   1, types),
				 values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		buildlog_stored_log(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							&snap->stored);
		/* one read path: a purged log is read from its archive */
		if (snap->stored.purged &&
			!(ranged && buildlog_restore_range(job_id, &snap->stored, after)))
			buildlog_restore_purged(job_id, &snap->stored);
	}
	else
	{
		memset(&snap->stored, 0, sizeof(StoredLog));
		snap->stored.final_number = -1;
	}

	buildlog_run(buildlog_plan(&pending_plan,
							   "select " PENDING_PART_COLUMNS
							   " from buildlog.log_parts"
							   " where job_id = $1 and number > $2",
							   2, types),
				 values, NULL, true, SPI_OK_SELECT);
	snap->pending = palloc(sizeof(LogPart) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		buildlog_pending_part(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
							  &snap->pending[i]);
	snap->npending = buildlog_dedupe_pending(snap->pending, (int) SPI_processed);
}

/* log(job_id): the log as a reader sees it now; NULL when there is none. */
Datum
buildlog_fetch(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	MemoryContext caller = CurrentMemoryContext;
	LogSnapshot snap;
	LogPart    *seq;
	int			n;
	int			merged;
	text	   *result = NULL;

	SPI_connect();
	read_log(job_id, -1, false, &snap);
	if (snap.stored.content != NULL || snap.npending > 0)
	{
		MemoryContext old;
		AssembledLog a;

		n = buildlog_merge(&snap.stored, snap.pending, snap.npending, -1,
						   &seq, &merged);
		old = MemoryContextSwitchTo(caller);
		a = buildlog_assemble(&snap.stored, seq, n);
		result = a.content;
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}

/*
 * parts(job_id, after): one row per part numbered above "after", in order,
 * whether pending or already merged into the log; read from the start
 * (after = -1), a log's head (text set whole) comes first as part -1.
 */
Datum
buildlog_parts(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	int32		after = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LogSnapshot snap;
	LogPart    *seq;
	int			n;
	int			merged;
	int			i;

	LogPart		head;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	read_log(job_id, after, true, &snap);
	n = buildlog_merge(&snap.stored, snap.pending, snap.npending, after,
					   &seq, &merged);
	/* a log set whole (set_content) is read as its head, then its parts */
	if (buildlog_head_part(&snap.stored, after, n, &head))
	{
		seq = repalloc(seq, sizeof(LogPart) * (n + 1));
		memmove(&seq[1], &seq[0], sizeof(LogPart) * n);
		seq[0] = head;
		n++;
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(seq[i].number);
		values[1] = PointerGetDatum(cstring_to_text_with_len(seq[i].data,
															 seq[i].len));
		values[2] = BoolGetDatum(seq[i].final);
		values[3] = TimestampTzGetDatum(seq[i].created_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(DatumGetPointer(values[1]));
	}
	SPI_finish();
	return (Datum) 0;
}
