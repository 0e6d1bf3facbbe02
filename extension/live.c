/*-------------------------------------------------------------------------
 * live.c
 *	  Live wake-ups of the HTTP worker after commits (see live.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/latch.h"
#include "storage/proc.h"

#include "live.h"
#include "shmem.h"

/* The HTTP worker's own count of streams per bit (only it calls watch). */
static uint16 watch_counts[BUILDLOG_LIVE_BITS];

/* This transaction wrote a watched job: wake the worker at commit. */
static bool wake_at_commit = false;
static bool callback_registered = false;

/* The bit of a job (a multiplicative hash: ids are often sequential). */
static inline uint32
job_bit(int64 job_id)
{
	return (uint32) (((uint64) job_id * UINT64CONST(0x9E3779B97F4A7C15)) >> 48);
}

void
buildlog_live_init(LiveShared *live)
{
	for (int i = 0; i < lengthof(live->bits); i++)
		pg_atomic_init_u64(&live->bits[i], 0);
	pg_atomic_init_u64(&live->wakeups, 0);
}

void
buildlog_live_watch(int64 job_id, int delta)
{
	uint32		bit = job_bit(job_id);
	uint64		mask = UINT64CONST(1) << (bit % 64);
	pg_atomic_uint64 *word = &buildlog_shared->live.bits[bit / 64];

	if (delta > 0 && watch_counts[bit]++ == 0)
		pg_atomic_fetch_or_u64(word, mask);
	else if (delta < 0 && watch_counts[bit] > 0 && --watch_counts[bit] == 0)
		pg_atomic_fetch_and_u64(word, ~mask);
}

/* At commit: count the waking commit and set the HTTP worker's latch. */
static void
live_xact_callback(XactEvent event, void *arg)
{
	WorkerSlot *slot;

	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		slot = &buildlog_shared->http.slot;
		pg_atomic_fetch_add_u64(&buildlog_shared->live.wakeups, 1);
		if (pg_atomic_read_u32(&slot->in_use) != 0)
			SetLatch(&ProcGlobal->allProcs[slot->pgprocno].procLatch);
		wake_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = false;
}

void
buildlog_live_written(const int64 *jobs, int n)
{
	if (buildlog_shared == NULL || wake_at_commit)
		return;					/* no workers (not preloaded), or already due */
	for (int i = 0; i < n; i++)
	{
		uint32		bit = job_bit(jobs[i]);

		if (pg_atomic_read_u64(&buildlog_shared->live.bits[bit / 64]) &
			(UINT64CONST(1) << (bit % 64)))
		{
			if (!callback_registered)
			{
				RegisterXactCallback(live_xact_callback, NULL);
				callback_registered = true;
			}
			wake_at_commit = true;
			return;
		}
	}
}

uint64
buildlog_live_wakeups(void)
{
	return pg_atomic_read_u64(&buildlog_shared->live.wakeups);
}
