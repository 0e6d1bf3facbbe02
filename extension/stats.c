/*-------------------------------------------------------------------------
 * stats.c
 *	  The SQL functions over the workers' shared state: drain_stats(),
 *	  scheduler_stats(), archive_worker_stats(), http_worker_stats() and
 *	  restart_workers().
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "shmem.h"

PG_FUNCTION_INFO_V1(buildlog_drain_worker_stats);
PG_FUNCTION_INFO_V1(buildlog_restart_workers);
PG_FUNCTION_INFO_V1(buildlog_scheduler_worker_stats);
PG_FUNCTION_INFO_V1(buildlog_archive_worker_stats);
PG_FUNCTION_INFO_V1(buildlog_http_worker_stats);

/*
 * The SQL declaration of a stats function must have the columns this
 * library fills: between installing a new library and ALTER EXTENSION
 * UPDATE, the old declaration would read the wrong types (a crash).
 */
static void
buildlog_check_columns(FunctionCallInfo fcinfo, int natts)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (rsinfo->setDesc->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL definitions of extension buildlog are older than its library"),
				 errdetail("%s returns %d columns; the library fills %d.",
						   get_func_name(fcinfo->flinfo->fn_oid), rsinfo->setDesc->natts, natts),
				 errhint("Run ALTER EXTENSION buildlog UPDATE.")));
}

/*
 * Start a stats function's rows (natts columns); false, with a notice, when
 * the workers' shared state is not there (no rows then).
 */
static bool
stats_begin(FunctionCallInfo fcinfo, int natts)
{
	InitMaterializedSRF(fcinfo, 0);
	buildlog_check_columns(fcinfo, natts);
	return buildlog_shared_available();
}

/* Add a row to the function's result. */
static void
put_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Start the row of a worker's slot (natts columns): false when no worker
 * runs in it.  Else the nulls are cleared and the first columns set: the
 * worker's number (when number > 0), then its pid.
 */
static bool
start_row(WorkerSlot *slot, int number, Datum *values, bool *nulls, int natts)
{
	int			col = 0;

	if (pg_atomic_read_u32(&slot->in_use) == 0)
		return false;
	memset(nulls, 0, sizeof(bool) * natts);
	if (number > 0)
		values[col++] = Int32GetDatum(number);
	values[col] = Int32GetDatum((int32) pg_atomic_read_u64(&slot->pid));
	return true;
}

/* A timestamp column that is NULL while never set. */
static void
put_timestamp(Datum *values, bool *nulls, int i, uint64 ts)
{
	if (ts == 0)
		nulls[i] = true;
	else
		values[i] = TimestampTzGetDatum((TimestampTz) ts);
}

/* Columns i... from the counters first..last (one run of fields, shmem.h). */
static void
put_counters(Datum *values, int i, pg_atomic_uint64 *first,
			 pg_atomic_uint64 *last)
{
	for (pg_atomic_uint64 *c = first; c <= last; c++)
		values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(c));
}

/*
 * The last_error and last_error_at columns at i and i + 1 from a slot
 * (both NULL while the worker had no error).
 */
static void
put_last_error(Datum *values, bool *nulls, int i, WorkerSlot *slot)
{
	char		error[BUILDLOG_TEXT_LEN];
	TimestampTz at;

	buildlog_slot_get_text(slot, slot->last_error, error, &slot->last_error_at, &at);
	if (error[0] != '\0')
	{
		values[i] = CStringGetTextDatum(error);
		values[i + 1] = TimestampTzGetDatum(at);
	}
	else
		nulls[i] = nulls[i + 1] = true;
}

/* drain_stats(): one row per running drain worker. */
Datum
buildlog_drain_worker_stats(PG_FUNCTION_ARGS)
{
	int			i;

	if (!stats_begin(fcinfo, 19))
		return (Datum) 0;
	for (i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
	{
		DrainStats *s = &buildlog_shared->drain[i];
		Datum		values[19];
		bool		nulls[19];
		char		queues[BUILDLOG_TEXT_LEN];
		uint64		batches;
		uint64		parts;
		uint64		deliveries;

		if (!start_row(&s->slot, i + 1, values, nulls, lengthof(nulls)))
			continue;
		buildlog_slot_get_text(&s->slot, s->queues, queues, NULL, NULL);

		batches = pg_atomic_read_u64(&s->batches);
		parts = pg_atomic_read_u64(&s->parts);
		deliveries = pg_atomic_read_u64(&s->deliveries);
		values[2] = CStringGetTextDatum(queues);
		values[3] = BoolGetDatum(pg_atomic_read_u32(&s->connected) != 0);
		put_timestamp(values, nulls, 4, pg_atomic_read_u64(&s->connected_since));
		values[5] = Int64GetDatum((int64) deliveries);
		values[6] = Int64GetDatum((int64) parts);
		put_counters(values, 7, &s->rejected, &s->replaced);
		values[9] = Int64GetDatum((int64) batches);
		if (batches > 0)
			values[10] = Float8GetDatum((double) (deliveries) / (double) batches);
		else
			nulls[10] = true;
		values[11] = Int64GetDatum((int64) pg_atomic_read_u64(&s->max_batch));
		put_timestamp(values, nulls, 12, pg_atomic_read_u64(&s->last_commit));
		put_counters(values, 13, &s->reconnects, &s->error_rejected);
		put_last_error(values, nulls, 17, &s->slot);
		put_row(fcinfo, values, nulls);
	}
	return (Datum) 0;
}

/*
 * restart_workers(): make every worker re-read the configuration; drain
 * workers also reconnect (new URL, queues, heartbeat), the others retry
 * at once whatever they were backing off from.  Returns how many were told.
 */
Datum
buildlog_restart_workers(PG_FUNCTION_ARGS)
{
	if (!buildlog_shared_available())
		PG_RETURN_INT32(0);
	PG_RETURN_INT32(buildlog_slots_wake_all());
}

/* scheduler_stats(): one row while the scheduler runs. */
Datum
buildlog_scheduler_worker_stats(PG_FUNCTION_ARGS)
{
	SchedulerStats *s;
	Datum		values[11];
	bool		nulls[11];
	char		maintenance[BUILDLOG_TEXT_LEN];
	TimestampTz maintenance_at;

	if (!stats_begin(fcinfo, 11))
		return (Datum) 0;
	s = &buildlog_shared->scheduler;
	if (!start_row(&s->slot, 0, values, nulls, lengthof(nulls)))
		return (Datum) 0;
	buildlog_slot_get_text(&s->slot, s->last_maintenance, maintenance,
						   &s->last_maintenance_at, &maintenance_at);

	put_counters(values, 1, &s->aggregated, &s->deferred);
	put_timestamp(values, nulls, 5, pg_atomic_read_u64(&s->last_round));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&s->maintenance_runs));
	if (maintenance[0] != '\0')
	{
		values[7] = CStringGetTextDatum(maintenance);
		values[8] = TimestampTzGetDatum(maintenance_at);
	}
	else
		nulls[7] = nulls[8] = true;
	put_last_error(values, nulls, 9, &s->slot);
	put_row(fcinfo, values, nulls);
	return (Datum) 0;
}

/* archive_worker_stats(): one row per running archive worker. */
Datum
buildlog_archive_worker_stats(PG_FUNCTION_ARGS)
{
	if (!stats_begin(fcinfo, 14))
		return (Datum) 0;
	for (int i = 0; i < BUILDLOG_MAX_ARCHIVE_WORKERS; i++)
	{
		ArchiveStats *s = &buildlog_shared->archive[i];
		Datum		values[14];
		bool		nulls[14];
		uint64		in_flight;
		uint64		bytes;
		uint64		busy_us;

		if (!start_row(&s->slot, i + 1, values, nulls, lengthof(nulls)))
			continue;
		in_flight = pg_atomic_read_u64(&s->in_flight);
		bytes = pg_atomic_read_u64(&s->bytes);
		busy_us = pg_atomic_read_u64(&s->busy_us);

		values[2] = Int64GetDatum((int64) in_flight);
		nulls[2] = (in_flight == 0);
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&s->archived));
		values[4] = Int64GetDatum((int64) bytes);
		values[5] = Float8GetDatum(busy_us > 0 ? (double) bytes * 1e6 / (double) busy_us : 0.0);
		nulls[5] = (busy_us == 0);
		put_counters(values, 6, &s->verified, &s->failures);
		put_timestamp(values, nulls, 11, pg_atomic_read_u64(&s->last_archived));
		put_last_error(values, nulls, 12, &s->slot);
		put_row(fcinfo, values, nulls);
	}
	return (Datum) 0;
}

/* http_worker_stats(): one row while the HTTP service runs. */
Datum
buildlog_http_worker_stats(PG_FUNCTION_ARGS)
{
	HttpStats  *s;
	Datum		values[11];
	bool		nulls[11];

	if (!stats_begin(fcinfo, 11))
		return (Datum) 0;
	s = &buildlog_shared->http;
	if (!start_row(&s->slot, 0, values, nulls, lengthof(nulls)))
		return (Datum) 0;
	put_counters(values, 1, &s->requests, &s->events);
	put_last_error(values, nulls, 9, &s->slot);
	put_row(fcinfo, values, nulls);
	return (Datum) 0;
}
