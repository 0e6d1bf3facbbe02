/*-------------------------------------------------------------------------
 * shmem.c
 *	  Shared memory of the workers, the drain_stats view's function and
 *	  restart_workers().
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "shmem.h"

BuildlogShared *buildlog_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(buildlog_drain_stats);
PG_FUNCTION_INFO_V1(buildlog_restart_workers);
PG_FUNCTION_INFO_V1(buildlog_scheduler_stats);
PG_FUNCTION_INFO_V1(buildlog_archive_stats);

/* Ask the postmaster for our segment. */
static void
buildlog_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BuildlogShared)));
}

/* Zero an archive worker's statistics. */
static void
init_archive_stats(ArchiveStats *s)
{
	pg_atomic_init_u32(&s->in_use, 0);
	pg_atomic_init_u64(&s->pid, 0);
	pg_atomic_init_u64(&s->in_flight, 0);
	pg_atomic_init_u64(&s->archived, 0);
	pg_atomic_init_u64(&s->bytes, 0);
	pg_atomic_init_u64(&s->busy_us, 0);
	pg_atomic_init_u64(&s->verified, 0);
	pg_atomic_init_u64(&s->purged, 0);
	pg_atomic_init_u64(&s->reuploads, 0);
	pg_atomic_init_u64(&s->retries, 0);
	pg_atomic_init_u64(&s->failures, 0);
	pg_atomic_init_u64(&s->last_archived, 0);
	SpinLockInit(&s->mutex);
	s->last_error[0] = '\0';
}

/* Zero the scheduler's statistics (postmaster start, crash restart). */
static void
init_scheduler_stats(SchedulerStats *s)
{
	pg_atomic_init_u32(&s->in_use, 0);
	pg_atomic_init_u64(&s->pid, 0);
	pg_atomic_init_u64(&s->aggregated, 0);
	pg_atomic_init_u64(&s->parts_merged, 0);
	pg_atomic_init_u64(&s->aggregate_failures, 0);
	pg_atomic_init_u64(&s->deferred, 0);
	pg_atomic_init_u64(&s->last_round, 0);
	pg_atomic_init_u64(&s->maintenance_runs, 0);
	SpinLockInit(&s->mutex);
	s->last_maintenance[0] = s->last_error[0] = '\0';
}

/* Create or attach the segment; the first process initialises it. */
static void
buildlog_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	buildlog_shared = ShmemInitStruct("buildlog", sizeof(BuildlogShared), &found);
	if (!found)
	{
		int			i;

		memset(buildlog_shared, 0, sizeof(BuildlogShared));
		pg_atomic_init_u64(&buildlog_shared->generation, 0);
		for (i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
		{
			DrainStats *s = &buildlog_shared->drain[i];

			pg_atomic_init_u32(&s->in_use, 0);
			pg_atomic_init_u32(&s->connected, 0);
			pg_atomic_init_u64(&s->pid, 0);
			pg_atomic_init_u64(&s->connected_since, 0);
			pg_atomic_init_u64(&s->deliveries, 0);
			pg_atomic_init_u64(&s->parts, 0);
			pg_atomic_init_u64(&s->rejected, 0);
			pg_atomic_init_u64(&s->replaced, 0);
			pg_atomic_init_u64(&s->batches, 0);
			pg_atomic_init_u64(&s->max_batch, 0);
			pg_atomic_init_u64(&s->last_commit, 0);
			pg_atomic_init_u64(&s->reconnects, 0);
			pg_atomic_init_u64(&s->failed_batches, 0);
			pg_atomic_init_u64(&s->split_retries, 0);
			pg_atomic_init_u64(&s->error_rejected, 0);
			SpinLockInit(&s->mutex);
		}
		init_scheduler_stats(&buildlog_shared->scheduler);
		for (i = 0; i < BUILDLOG_MAX_ARCHIVE_WORKERS; i++)
			init_archive_stats(&buildlog_shared->archive[i]);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the hooks; called from _PG_init while preloading. */
void
buildlog_shmem_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = buildlog_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = buildlog_shmem_startup;
}

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
 * Is the workers' shared state there?  Without the preload there are no
 * workers: the stats functions answer with no rows and a notice saying why.
 */
bool
buildlog_shared_available(void)
{
	if (buildlog_shared == NULL)
		ereport(NOTICE,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("buildlog is not loaded through shared_preload_libraries: no background workers run"),
				 errhint("Add buildlog to shared_preload_libraries in postgresql.conf and restart the server.")));
	return buildlog_shared != NULL;
}

/* Copy a string into a slot field under its spinlock. */
void
buildlog_stats_set_text(DrainStats *s, char *dst, const char *text)
{
	SpinLockAcquire(&s->mutex);
	strlcpy(dst, text, BUILDLOG_TEXT_LEN);
	SpinLockRelease(&s->mutex);
}

/* Record the latest error of a worker with its time. */
void
buildlog_stats_error(DrainStats *s, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&s->mutex);
	strlcpy(s->last_error, error, BUILDLOG_TEXT_LEN);
	s->last_error_at = now;
	SpinLockRelease(&s->mutex);
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

/* drain_stats(): one row per running drain worker. */
Datum
buildlog_drain_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	buildlog_check_columns(fcinfo, 19);
	if (!buildlog_shared_available())
		return (Datum) 0;
	for (i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
	{
		DrainStats *s = &buildlog_shared->drain[i];
		Datum		values[19];
		bool		nulls[19];
		char		queues[BUILDLOG_TEXT_LEN];
		char		error[BUILDLOG_TEXT_LEN];
		TimestampTz error_at;
		uint64		batches;
		uint64		parts;
		uint64		deliveries;

		if (pg_atomic_read_u32(&s->in_use) == 0)
			continue;
		memset(nulls, 0, sizeof(nulls));
		SpinLockAcquire(&s->mutex);
		strlcpy(queues, s->queues, sizeof(queues));
		strlcpy(error, s->last_error, sizeof(error));
		error_at = s->last_error_at;
		SpinLockRelease(&s->mutex);

		batches = pg_atomic_read_u64(&s->batches);
		parts = pg_atomic_read_u64(&s->parts);
		deliveries = pg_atomic_read_u64(&s->deliveries);
		values[0] = Int32GetDatum(i + 1);
		values[1] = Int32GetDatum((int32) pg_atomic_read_u64(&s->pid));
		values[2] = CStringGetTextDatum(queues);
		values[3] = BoolGetDatum(pg_atomic_read_u32(&s->connected) != 0);
		put_timestamp(values, nulls, 4, pg_atomic_read_u64(&s->connected_since));
		values[5] = Int64GetDatum((int64) deliveries);
		values[6] = Int64GetDatum((int64) parts);
		values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&s->rejected));
		values[8] = Int64GetDatum((int64) pg_atomic_read_u64(&s->replaced));
		values[9] = Int64GetDatum((int64) batches);
		if (batches > 0)
			values[10] = Float8GetDatum((double) (deliveries) / (double) batches);
		else
			nulls[10] = true;
		values[11] = Int64GetDatum((int64) pg_atomic_read_u64(&s->max_batch));
		put_timestamp(values, nulls, 12, pg_atomic_read_u64(&s->last_commit));
		values[13] = Int64GetDatum((int64) pg_atomic_read_u64(&s->reconnects));
		values[14] = Int64GetDatum((int64) pg_atomic_read_u64(&s->failed_batches));
		values[15] = Int64GetDatum((int64) pg_atomic_read_u64(&s->split_retries));
		values[16] = Int64GetDatum((int64) pg_atomic_read_u64(&s->error_rejected));
		if (error[0] != '\0')
		{
			values[17] = CStringGetTextDatum(error);
			values[18] = TimestampTzGetDatum(error_at);
		}
		else
			nulls[17] = nulls[18] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * restart_workers(): make every drain worker re-read the configuration and
 * reconnect (new URL, queues, heartbeat).  Returns how many were told.
 */
Datum
buildlog_restart_workers(PG_FUNCTION_ARGS)
{
	int			told = 0;
	int			i;

	if (!buildlog_shared_available())
		PG_RETURN_INT32(0);
	pg_atomic_fetch_add_u64(&buildlog_shared->generation, 1);
	for (i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
	{
		DrainStats *s = &buildlog_shared->drain[i];

		if (pg_atomic_read_u32(&s->in_use) == 0)
			continue;
		SetLatch(&ProcGlobal->allProcs[s->pgprocno].procLatch);
		told++;
	}
	PG_RETURN_INT32(told);
}

/* Mark the scheduler's slot free when it exits. */
static void
release_scheduler(int code, Datum arg)
{
	pg_atomic_write_u32(&buildlog_shared->scheduler.in_use, 0);
}

/* The scheduler's statistics slot, claimed by the running scheduler. */
SchedulerStats *
buildlog_scheduler_claim(void)
{
	SchedulerStats *s = &buildlog_shared->scheduler;

	pg_atomic_write_u64(&s->pid, (uint64) MyProcPid);
	pg_atomic_write_u32(&s->in_use, 1);
	on_shmem_exit(release_scheduler, (Datum) 0);
	return s;
}

/* Record the scheduler's latest error with its time. */
void
buildlog_scheduler_error(SchedulerStats *s, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&s->mutex);
	strlcpy(s->last_error, error, BUILDLOG_TEXT_LEN);
	s->last_error_at = now;
	SpinLockRelease(&s->mutex);
}

/* Record what the latest partition maintenance did. */
void
buildlog_scheduler_set_maintenance(SchedulerStats *s, const char *result)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&s->mutex);
	strlcpy(s->last_maintenance, result, BUILDLOG_TEXT_LEN);
	s->last_maintenance_at = now;
	SpinLockRelease(&s->mutex);
}

/* scheduler_stats(): one row while the scheduler runs. */
Datum
buildlog_scheduler_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SchedulerStats *s;
	Datum		values[11];
	bool		nulls[11];
	char		maintenance[BUILDLOG_TEXT_LEN];
	char		error[BUILDLOG_TEXT_LEN];
	TimestampTz maintenance_at;
	TimestampTz error_at;

	InitMaterializedSRF(fcinfo, 0);
	buildlog_check_columns(fcinfo, 11);
	if (!buildlog_shared_available())
		return (Datum) 0;
	s = &buildlog_shared->scheduler;
	if (pg_atomic_read_u32(&s->in_use) == 0)
		return (Datum) 0;
	memset(nulls, 0, sizeof(nulls));
	SpinLockAcquire(&s->mutex);
	strlcpy(maintenance, s->last_maintenance, sizeof(maintenance));
	maintenance_at = s->last_maintenance_at;
	strlcpy(error, s->last_error, sizeof(error));
	error_at = s->last_error_at;
	SpinLockRelease(&s->mutex);

	values[0] = Int32GetDatum((int32) pg_atomic_read_u64(&s->pid));
	values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&s->aggregated));
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&s->parts_merged));
	values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&s->aggregate_failures));
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&s->deferred));
	put_timestamp(values, nulls, 5, pg_atomic_read_u64(&s->last_round));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&s->maintenance_runs));
	if (maintenance[0] != '\0')
	{
		values[7] = CStringGetTextDatum(maintenance);
		values[8] = TimestampTzGetDatum(maintenance_at);
	}
	else
		nulls[7] = nulls[8] = true;
	if (error[0] != '\0')
	{
		values[9] = CStringGetTextDatum(error);
		values[10] = TimestampTzGetDatum(error_at);
	}
	else
		nulls[9] = nulls[10] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* Mark an archive worker's slot free when it exits. */
static void
release_archive(int code, Datum arg)
{
	ArchiveStats *s = &buildlog_shared->archive[DatumGetInt32(arg)];

	pg_atomic_write_u64(&s->in_flight, 0);
	pg_atomic_write_u32(&s->in_use, 0);
}

/* Claim archive worker index's statistics slot. */
ArchiveStats *
buildlog_archive_claim(int index)
{
	ArchiveStats *s = &buildlog_shared->archive[index];

	pg_atomic_write_u64(&s->pid, (uint64) MyProcPid);
	pg_atomic_write_u64(&s->in_flight, 0);
	pg_atomic_write_u32(&s->in_use, 1);
	on_shmem_exit(release_archive, Int32GetDatum(index));
	return s;
}

/* Record an archive worker's latest error with its time. */
void
buildlog_archive_error(ArchiveStats *s, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&s->mutex);
	strlcpy(s->last_error, error, BUILDLOG_TEXT_LEN);
	s->last_error_at = now;
	SpinLockRelease(&s->mutex);
}

/* archive_worker_stats(): one row per running archive worker. */
Datum
buildlog_archive_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	buildlog_check_columns(fcinfo, 14);
	if (!buildlog_shared_available())
		return (Datum) 0;
	for (int i = 0; i < BUILDLOG_MAX_ARCHIVE_WORKERS; i++)
	{
		ArchiveStats *s = &buildlog_shared->archive[i];
		Datum		values[14];
		bool		nulls[14];
		char		error[BUILDLOG_TEXT_LEN];
		TimestampTz error_at;
		uint64		in_flight;
		uint64		bytes;
		uint64		busy_us;

		if (pg_atomic_read_u32(&s->in_use) == 0)
			continue;
		memset(nulls, 0, sizeof(nulls));
		SpinLockAcquire(&s->mutex);
		strlcpy(error, s->last_error, sizeof(error));
		error_at = s->last_error_at;
		SpinLockRelease(&s->mutex);
		in_flight = pg_atomic_read_u64(&s->in_flight);
		bytes = pg_atomic_read_u64(&s->bytes);
		busy_us = pg_atomic_read_u64(&s->busy_us);

		values[0] = Int32GetDatum(i + 1);
		values[1] = Int32GetDatum((int32) pg_atomic_read_u64(&s->pid));
		values[2] = Int64GetDatum((int64) in_flight);
		nulls[2] = (in_flight == 0);
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&s->archived));
		values[4] = Int64GetDatum((int64) bytes);
		values[5] = Float8GetDatum(busy_us > 0 ? (double) bytes * 1e6 / (double) busy_us : 0.0);
		nulls[5] = (busy_us == 0);
		values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&s->verified));
		values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&s->purged));
		values[8] = Int64GetDatum((int64) pg_atomic_read_u64(&s->reuploads));
		values[9] = Int64GetDatum((int64) pg_atomic_read_u64(&s->retries));
		values[10] = Int64GetDatum((int64) pg_atomic_read_u64(&s->failures));
		put_timestamp(values, nulls, 11, pg_atomic_read_u64(&s->last_archived));
		if (error[0] != '\0')
		{
			values[12] = CStringGetTextDatum(error);
			values[13] = TimestampTzGetDatum(error_at);
		}
		else
			nulls[12] = nulls[13] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
