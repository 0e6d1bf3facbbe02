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

/* The watched bits this transaction wrote: marked dirty at its commit. */
#define MAX_PENDING_BITS 64
static uint32 pending_bits[MAX_PENDING_BITS];
static int	npending = 0;
static bool pending_overflow = false;	/* more: mark every bit dirty */
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
	for (int i = 0; i < lengthof(live->dirty); i++)
		pg_atomic_init_u64(&live->dirty[i], 0);
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

/* Mark bit dirty. */
static inline void
mark_dirty(uint32 bit)
{
	pg_atomic_fetch_or_u64(&buildlog_shared->live.dirty[bit / 64], UINT64CONST(1) << (bit % 64));
}

/* At commit: mark the written jobs dirty, count the commit, wake the worker. */
static void
live_xact_callback(XactEvent event, void *arg)
{
	WorkerSlot *slot;

	if (npending == 0 && !pending_overflow)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (pending_overflow)
			for (int i = 0; i < lengthof(buildlog_shared->live.dirty); i++)
				pg_atomic_write_u64(&buildlog_shared->live.dirty[i], ~UINT64CONST(0));
		else
			for (int i = 0; i < npending; i++)
				mark_dirty(pending_bits[i]);
		slot = &buildlog_shared->http.slot;
		pg_atomic_fetch_add_u64(&buildlog_shared->live.wakeups, 1);
		if (pg_atomic_read_u32(&slot->in_use) != 0)
			SetLatch(&ProcGlobal->allProcs[slot->pgprocno].procLatch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		npending = 0;
		pending_overflow = false;
	}
}

void
buildlog_live_written(const int64 *jobs, int n)
{
	if (buildlog_shared == NULL)
		return;					/* no workers (not preloaded) */
	for (int i = 0; i < n && !pending_overflow; i++)
	{
		uint32		bit = job_bit(jobs[i]);
		bool		known = false;

		if (!(pg_atomic_read_u64(&buildlog_shared->live.bits[bit / 64]) &
			  (UINT64CONST(1) << (bit % 64))))
			continue;			/* nobody watches it: one bit test */
		if (!callback_registered)
		{
			RegisterXactCallback(live_xact_callback, NULL);
			callback_registered = true;
		}
		for (int k = 0; k < npending && !known; k++)
			known = pending_bits[k] == bit;
		if (known)
			continue;
		if (npending == MAX_PENDING_BITS)
			pending_overflow = true;
		else
			pending_bits[npending++] = bit;
	}
}

bool
buildlog_live_dirty(int64 job_id)
{
	uint32		bit = job_bit(job_id);

	return (pg_atomic_read_u64(&buildlog_shared->live.dirty[bit / 64]) &
			(UINT64CONST(1) << (bit % 64))) != 0;
}

void
buildlog_live_clear(int64 job_id)
{
	uint32		bit = job_bit(job_id);

	pg_atomic_fetch_and_u64(&buildlog_shared->live.dirty[bit / 64], ~(UINT64CONST(1) << (bit % 64)));
}

void
buildlog_live_mark(int64 job_id)
{
	mark_dirty(job_bit(job_id));
}

uint64
buildlog_live_wakeups(void)
{
	return pg_atomic_read_u64(&buildlog_shared->live.wakeups);
}
