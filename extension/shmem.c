/*-------------------------------------------------------------------------
 * shmem.c
 *	  Shared memory of the workers: the segment, and the slot every worker
 *	  claims for its statistics (the SQL functions reading them: stats.c).
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

/* PostgreSQL's hook chaining; bgworker/http/mailbox.c repeats it for its segment. */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Ask the postmaster for our segment. */
static void
buildlog_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BuildlogShared)));
}

/* Zero a slot header. */
static void
init_slot(WorkerSlot *slot)
{
	pg_atomic_init_u32(&slot->in_use, 0);
	pg_atomic_init_u64(&slot->pid, 0);
	SpinLockInit(&slot->mutex);
	slot->last_error[0] = '\0';
}

/*
 * Zero the counters first..last: consecutive pg_atomic_uint64 fields of one
 * statistics struct (shmem.h keeps each struct's counters together).
 */
static void
init_counters(pg_atomic_uint64 *first, pg_atomic_uint64 *last)
{
	for (pg_atomic_uint64 *c = first; c <= last; c++)
		pg_atomic_init_u64(c, 0);
}

/* Zero an archive worker's statistics. */
static void
init_archive_stats(ArchiveStats *s)
{
	init_slot(&s->slot);
	init_counters(&s->in_flight, &s->last_archived);
}

/* Zero the scheduler's statistics (postmaster start, crash restart). */
static void
init_scheduler_stats(SchedulerStats *s)
{
	init_slot(&s->slot);
	init_counters(&s->aggregated, &s->maintenance_runs);
	s->last_maintenance[0] = '\0';
}

/* Zero the HTTP service's statistics. */
static void
init_http_stats(HttpStats *s)
{
	init_slot(&s->slot);
	init_counters(&s->requests, &s->uploads);
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
		pg_atomic_init_u64(&buildlog_shared->token_revocations, 0);
		for (i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
		{
			DrainStats *s = &buildlog_shared->drain[i];

			init_slot(&s->slot);
			pg_atomic_init_u32(&s->connected, 0);
			init_counters(&s->connected_since, &s->error_rejected);
		}
		init_scheduler_stats(&buildlog_shared->scheduler);
		for (i = 0; i < BUILDLOG_MAX_ARCHIVE_WORKERS; i++)
			init_archive_stats(&buildlog_shared->archive[i]);
		init_http_stats(&buildlog_shared->http);
		for (i = 0; i < BUILDLOG_MAX_HTTP_READERS; i++)
		{
			HttpReaderStats *r = &buildlog_shared->http_readers[i];

			init_slot(&r->slot);
			init_counters(&r->reads, &r->busy_us);
		}
		buildlog_live_init(&buildlog_shared->live);
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

/* Mark a slot free when its worker exits. */
static void
release_slot(int code, Datum arg)
{
	WorkerSlot *slot = (WorkerSlot *) DatumGetPointer(arg);

	pg_atomic_write_u32(&slot->in_use, 0);
}

void
buildlog_slot_claim(WorkerSlot *slot)
{
	pg_atomic_write_u64(&slot->pid, (uint64) MyProcPid);
	slot->pgprocno = MyProc->pgprocno;
	pg_atomic_write_u32(&slot->in_use, 1);
	on_shmem_exit(release_slot, PointerGetDatum(slot));
}

void
buildlog_slot_set_text(WorkerSlot *slot, char *dst, const char *text, TimestampTz *at)
{
	TimestampTz now = at ? GetCurrentTimestamp() : 0;

	SpinLockAcquire(&slot->mutex);
	strlcpy(dst, text, BUILDLOG_TEXT_LEN);
	if (at)
		*at = now;
	SpinLockRelease(&slot->mutex);
}

void
buildlog_slot_set_error(WorkerSlot *slot, const char *error)
{
	buildlog_slot_set_text(slot, slot->last_error, error, &slot->last_error_at);
}

void
buildlog_slot_get_text(WorkerSlot *slot, const char *src, char *dst,
					   const TimestampTz *at, TimestampTz *at_out)
{
	SpinLockAcquire(&slot->mutex);
	strlcpy(dst, src, BUILDLOG_TEXT_LEN);
	if (at)
		*at_out = *at;
	SpinLockRelease(&slot->mutex);
}

bool
buildlog_slot_wake(WorkerSlot *slot)
{
	if (pg_atomic_read_u32(&slot->in_use) == 0)
		return false;
	SetLatch(&ProcGlobal->allProcs[slot->pgprocno].procLatch);
	return true;
}

/* Every slot of every kind, for buildlog_slots_wake_all(). */
static void
wake(WorkerSlot *slot, int *told)
{
	if (buildlog_slot_wake(slot))
		(*told)++;
}

int
buildlog_slots_wake_all(void)
{
	int			told = 0;

	pg_atomic_fetch_add_u64(&buildlog_shared->generation, 1);
	for (int i = 0; i < BUILDLOG_MAX_DRAIN_WORKERS; i++)
		wake(&buildlog_shared->drain[i].slot, &told);
	wake(&buildlog_shared->scheduler.slot, &told);
	for (int i = 0; i < BUILDLOG_MAX_ARCHIVE_WORKERS; i++)
		wake(&buildlog_shared->archive[i].slot, &told);
	wake(&buildlog_shared->http.slot, &told);
	for (int i = 0; i < BUILDLOG_MAX_HTTP_READERS; i++)
		wake(&buildlog_shared->http_readers[i].slot, &told);
	return told;
}
