/*-------------------------------------------------------------------------
 * live.h
 *	  Live wake-ups: a commit that stores parts of a watched job wakes the
 *	  HTTP worker through shared memory and its latch (no LISTEN/NOTIFY on
 *	  the write path, no polling).
 *
 * The HTTP worker marks the jobs its event streams watch in a shared bitmap
 * (by hash: a collision only costs a spurious wake-up).  Every ingest path
 * goes through buildlog_ingest(), which notes the marked jobs it wrote; at
 * commit the writer marks them dirty, bumps a counter and sets the worker's
 * latch, and the worker reads only the dirty jobs.
 * Unwatched jobs cost one bit test each.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_LIVE_H
#define BUILDLOG_LIVE_H

#include "postgres.h"

#include "port/atomics.h"

#define BUILDLOG_LIVE_BITS	65536

/* The shared part (inside BuildlogShared). */
typedef struct LiveShared
{
	pg_atomic_uint64 bits[BUILDLOG_LIVE_BITS / 64];
	pg_atomic_uint64 dirty[BUILDLOG_LIVE_BITS / 64];	/* written since read */
	pg_atomic_uint64 wakeups;	/* commits that wrote a watched job */
} LiveShared;

/* Zero it (shared memory start-up). */
extern void buildlog_live_init(LiveShared *live);

/* HTTP worker: one more (delta 1) or one less (-1) stream watches job_id. */
extern void buildlog_live_watch(int64 job_id, int delta);

/* Ingest: these jobs were written in the current transaction. */
extern void buildlog_live_written(const int64 *jobs, int n);

/*
 * HTTP worker: was a job of this bit written since the bit was last cleared
 * (a collision only costs a read)?  And clear it, before reading the job:
 * a commit after the clear marks it again.
 */
extern bool buildlog_live_dirty(int64 job_id);
extern void buildlog_live_clear(int64 job_id);

/* HTTP worker: mark a job dirty again (its read failed: retry it). */
extern void buildlog_live_mark(int64 job_id);

/* How many waking commits there were so far (the worker compares). */
extern uint64 buildlog_live_wakeups(void);

#endif							/* BUILDLOG_LIVE_H */
