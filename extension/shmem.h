/*-------------------------------------------------------------------------
 * shmem.h
 *	  Shared state of buildlog's background workers: per-worker statistics
 *	  (atomics) and the generation counter restart_workers() bumps.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SHMEM_H
#define BUILDLOG_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/spin.h"

#define BUILDLOG_MAX_DRAIN_WORKERS	64
#define BUILDLOG_TEXT_LEN			256

/* Statistics of one drain worker; counters are written by it alone. */
typedef struct DrainStats
{
	pg_atomic_uint32 in_use;	/* a worker runs in this slot */
	pg_atomic_uint32 connected;
	pg_atomic_uint64 pid;
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
	int			pgprocno;		/* to set the worker's latch */
	slock_t		mutex;			/* protects the strings below */
	char		queues[BUILDLOG_TEXT_LEN];
	char		last_error[BUILDLOG_TEXT_LEN];
	TimestampTz last_error_at;
} DrainStats;

/* Statistics of the scheduler worker. */
typedef struct SchedulerStats
{
	pg_atomic_uint32 in_use;
	pg_atomic_uint64 pid;
	pg_atomic_uint64 aggregated;	/* jobs */
	pg_atomic_uint64 parts_merged;
	pg_atomic_uint64 aggregate_failures;
	pg_atomic_uint64 deferred;	/* lock timeouts: the log was being archived */
	pg_atomic_uint64 last_round;	/* TimestampTz */
	pg_atomic_uint64 maintenance_runs;
	slock_t		mutex;			/* protects the fields below */
	char		last_maintenance[BUILDLOG_TEXT_LEN];
	TimestampTz last_maintenance_at;
	char		last_error[BUILDLOG_TEXT_LEN];
	TimestampTz last_error_at;
} SchedulerStats;

#define BUILDLOG_MAX_ARCHIVE_WORKERS 16

/* Statistics of one archive worker; counters are written by it alone. */
typedef struct ArchiveStats
{
	pg_atomic_uint32 in_use;
	pg_atomic_uint64 pid;
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
	slock_t		mutex;			/* protects the fields below */
	char		last_error[BUILDLOG_TEXT_LEN];
	TimestampTz last_error_at;
} ArchiveStats;

typedef struct BuildlogShared
{
	pg_atomic_uint64 generation;	/* bumped by restart_workers() */
	DrainStats	drain[BUILDLOG_MAX_DRAIN_WORKERS];
	SchedulerStats scheduler;
	ArchiveStats archive[BUILDLOG_MAX_ARCHIVE_WORKERS];
} BuildlogShared;

extern BuildlogShared *buildlog_shared;

extern void buildlog_shmem_init_hooks(void);
extern bool buildlog_shared_available(void);
extern void buildlog_stats_set_text(DrainStats *s, char *dst, const char *text);
extern void buildlog_stats_error(DrainStats *s, const char *error);
extern SchedulerStats *buildlog_scheduler_claim(void);
extern void buildlog_scheduler_error(SchedulerStats *s, const char *error);
extern void buildlog_scheduler_set_maintenance(SchedulerStats *s, const char *result);
extern ArchiveStats *buildlog_archive_claim(int index);
extern void buildlog_archive_error(ArchiveStats *s, const char *error);

#endif							/* BUILDLOG_SHMEM_H */
