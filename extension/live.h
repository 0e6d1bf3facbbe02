/*-------------------------------------------------------------------------
 * live.h
 *	  Live wake-ups: a commit that stores parts of a watched job wakes the
 *	  HTTP worker through shared memory and its latch (no LISTEN/NOTIFY on
 *	  the write path, no polling).
 *
 * The HTTP worker marks the jobs its event streams watch in a shared bitmap
 * (by hash: a collision only costs a spurious wake-up).  Every ingest path
 * goes through buildlog_ingest(), which notes whether a job it wrote is
 * marked; at commit the writer bumps a counter and sets the worker's latch.
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
	pg_atomic_uint64 wakeups;	/* commits that wrote a watched job */
} LiveShared;

/* Zero it (shared memory start-up). */
extern void buildlog_live_init(LiveShared *live);

/* HTTP worker: one more (delta 1) or one less (-1) stream watches job_id. */
extern void buildlog_live_watch(int64 job_id, int delta);

/* Ingest: these jobs were written in the current transaction. */
extern void buildlog_live_written(const int64 *jobs, int n);

/* How many waking commits there were so far (the worker compares). */
extern uint64 buildlog_live_wakeups(void);

#endif							/* BUILDLOG_LIVE_H */
