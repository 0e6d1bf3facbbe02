/*-------------------------------------------------------------------------
 * shmem.h
 *	  Shared state of buildlog's background workers: per-worker statistics
 *	  (atomics), each behind one slot header, the generation counter
 *	  restart_workers() bumps, and the one token revocations bump.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SHMEM_H
#define BUILDLOG_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/spin.h"

#include "live.h"

#define BUILDLOG_MAX_DRAIN_WORKERS	64
#define BUILDLOG_TEXT_LEN			256

/*
 * Each statistics struct below keeps its pg_atomic_uint64 counters in one
 * run of fields: shmem.c zeroes them first to last.
 */

/*
 * What every worker's statistics start with: who runs in the slot, how to
 * wake it, and its latest error.  Claimed at start, released at exit.
 */
typedef struct WorkerSlot
{
	pg_atomic_uint32 in_use;	/* a worker runs in this slot */
	pg_atomic_uint64 pid;
	int			pgprocno;		/* to set the worker's latch */
	slock_t		mutex;			/* protects the strings of the whole stats */
	char		last_error[BUILDLOG_TEXT_LEN];
	TimestampTz last_error_at;
} WorkerSlot;

/* Statistics of one drain worker; counters are written by it alone. */
typedef struct DrainStats
{
	WorkerSlot	slot;
	pg_atomic_uint32 connected;
	pg_atomic_uint64 connected_since;	/* TimestampTz */
	pg_atomic_uint64 deliveries;
	pg_atomic_uint64 parts;
	pg_atomic_uint64 rejected;
	pg_atomic_uint64 replaced;
	pg_atomic_uint64 batches;
	pg_atomic_uint64 max_batch;
	pg_atomic_uint64 last_commit;	/* TimestampTz */
	pg_atomic_uint64 reconnects;
	pg_atomic_uint64 failed_batches;	/* write transactions that failed */
	pg_atomic_uint64 split_retries; /* failed pieces retried in two halves */
	pg_atomic_uint64 error_rejected;	/* kept aside after an ERROR */
	char		queues[BUILDLOG_TEXT_LEN];	/* under slot.mutex */
} DrainStats;

/* Statistics of the scheduler worker. */
typedef struct SchedulerStats
{
	WorkerSlot	slot;
	pg_atomic_uint64 aggregated;	/* jobs */
	pg_atomic_uint64 parts_merged;
	pg_atomic_uint64 aggregate_failures;
	pg_atomic_uint64 deferred;	/* lock timeouts: the log was being archived */
	pg_atomic_uint64 last_round;	/* TimestampTz */
	pg_atomic_uint64 maintenance_runs;
	char		last_maintenance[BUILDLOG_TEXT_LEN];	/* under slot.mutex */
	TimestampTz last_maintenance_at;
} SchedulerStats;

#define BUILDLOG_MAX_ARCHIVE_WORKERS 16

/* Statistics of one archive worker; counters are written by it alone. */
typedef struct ArchiveStats
{
	WorkerSlot	slot;
	pg_atomic_uint64 in_flight;	/* job id being uploaded, 0 when none */
	pg_atomic_uint64 archived;
	pg_atomic_uint64 bytes;		/* stored bytes uploaded */
	pg_atomic_uint64 busy_us;	/* time spent archiving, for bytes/s */
	pg_atomic_uint64 verified;
	pg_atomic_uint64 purged;
	pg_atomic_uint64 reuploads;	/* archives found missing or different */
	pg_atomic_uint64 retries;	/* S3 unreachable, 5xx */
	pg_atomic_uint64 failures;	/* 4xx and other errors */
	pg_atomic_uint64 last_archived; /* TimestampTz */
} ArchiveStats;

/* Statistics of the HTTP service worker. */
typedef struct HttpStats
{
	WorkerSlot	slot;
	pg_atomic_uint64 requests;
	pg_atomic_uint64 responses_2xx;
	pg_atomic_uint64 responses_4xx;
	pg_atomic_uint64 responses_5xx;
	pg_atomic_uint64 bytes_sent;
	pg_atomic_uint64 connections;	/* open now */
	pg_atomic_uint64 streams;	/* event streams open now */
	pg_atomic_uint64 events;	/* part events queued, all streams */
	pg_atomic_uint64 ingest_commits;	/* group commits of HTTP uploads */
	pg_atomic_uint64 ingest_writes;	/* requests' writes in those groups */
	pg_atomic_uint64 ingest_parts;	/* parts they stored */
	pg_atomic_uint64 stream_bytes;	/* raw bytes of POST .../stream stored */
	pg_atomic_uint64 uploads;	/* POST .../stream requests open now */
} HttpStats;

#define BUILDLOG_MAX_HTTP_READERS	16
/* Statistics of one HTTP reader process. */
typedef struct HttpReaderStats
{
	WorkerSlot	slot;
	pg_atomic_uint64 reads;		/* answered */
	pg_atomic_uint64 bytes;		/* body bytes written for the HTTP worker */
	pg_atomic_uint64 busy_us;	/* time spent reading */
} HttpReaderStats;

typedef struct BuildlogShared
{
	pg_atomic_uint64 generation;	/* bumped by restart_workers() */
	pg_atomic_uint64 token_revocations; /* bumped by every commit that
										 * changed buildlog.token_revocations
										 * (token.c): the HTTP worker reads
										 * them again */
	DrainStats	drain[BUILDLOG_MAX_DRAIN_WORKERS];
	SchedulerStats scheduler;
	ArchiveStats archive[BUILDLOG_MAX_ARCHIVE_WORKERS];
	HttpStats	http;
	HttpReaderStats http_readers[BUILDLOG_MAX_HTTP_READERS];	/* its reader processes */
	LiveShared	live;			/* watched jobs, waking commits (live.h) */
} BuildlogShared;

extern BuildlogShared *buildlog_shared;

extern void buildlog_shmem_init_hooks(void);

/* Is the shared state there (preloaded)?  A NOTICE says why not. */
extern bool buildlog_shared_available(void);

/* Take a slot for this process (released at exit) / mark it free. */
extern void buildlog_slot_claim(WorkerSlot *slot);

/* Copy text into a string field of the slot's stats, under its spinlock. */
extern void buildlog_slot_set_text(WorkerSlot *slot, char *dst, const char *text,
								   TimestampTz *at);

/* Record the worker's latest error, with its time. */
extern void buildlog_slot_set_error(WorkerSlot *slot, const char *error);

/* Read a string field (and its time) under the slot's spinlock. */
extern void buildlog_slot_get_text(WorkerSlot *slot, const char *src, char *dst,
								   const TimestampTz *at, TimestampTz *at_out);

/* Set the latch of the worker in the slot; false when none runs there. */
extern bool buildlog_slot_wake(WorkerSlot *slot);

/* Wake every running worker (restart_workers()); returns how many. */
extern int	buildlog_slots_wake_all(void);

#endif							/* BUILDLOG_SHMEM_H */
