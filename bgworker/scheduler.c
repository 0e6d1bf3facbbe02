/*-------------------------------------------------------------------------
 * scheduler.c
 *	  The scheduler worker (one per cluster, in buildlog.database).
 *
 * Every second it aggregates the jobs buildlog.aggregatable() returns, each
 * in its own transaction with a short lock timeout, so one job that cannot
 * be aggregated (a log being archived, a purged log with late parts, a bug)
 * neither blocks nor fails the others.  Every buildlog.maintenance_interval
 * it runs buildlog.run_maintenance(), which brings its own lock-timeout and
 * retry rules.  Errors are logged once per kind (job ids normalised; no floods) and
 * shown in buildlog.scheduler_stats; SIGTERM ends it at the next interrupt
 * check; SIGHUP re-reads the settings.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "spiutil.h"
#include "scheduler.h"
#include "shmem.h"
#include "worker.h"

#define TICK_MS				1000
#define JOBS_PER_TICK		500
#define MAINTENANCE_RETRY_S	60	/* after a failed maintenance run */
#define AGGREGATE_LOCK_TIMEOUT "1s"
#define FAILURES_PER_ROUND	20	/* then a new round: failing jobs go last */

/* What the worker keeps between ticks. */
typedef struct Scheduler
{
	SchedulerStats *stats;
	MemoryContext loop_cxt;
	MemoryContext tick_cxt;
	TimestampTz next_maintenance;
	WorkerLogLimit log;
	bool		waiting_for_extension;
	bool		waiting_for_update; /* the schema is older than the library */
} Scheduler;

static SPIPlanPtr due_plan = NULL;
static SPIPlanPtr aggregate_plan = NULL;
static SPIPlanPtr maintenance_plan = NULL;
static SPIPlanPtr failed_plan = NULL;

/* Register the scheduler; called from _PG_init. */
void
buildlog_scheduler_register(void)
{
	buildlog_worker_register("scheduler", "buildlog_scheduler_main", 0, false);
}

/* Log a problem once: repeats of the same text stay quiet. */
static void
log_once(Scheduler *s, int level, const char *msg)
{
	buildlog_scheduler_error(s->stats, msg);
	buildlog_worker_log(&s->log, level, "buildlog scheduler", msg, 0);
}

/* The due jobs, read in one short transaction; *n gets their number. */
static int64 *
due_jobs(Scheduler *s, int *n)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(JOBS_PER_TICK)};
	int64	   *volatile jobs = NULL;
	volatile int count = 0;
	char		msg[BUILDLOG_TEXT_LEN];

	PG_TRY();
	{
		buildlog_worker_begin("buildlog scheduler: finding due jobs");
		SPI_connect();
		buildlog_run(buildlog_plan(&due_plan,
								   "select job_id from buildlog.aggregatable($1)",
								   1, types),
					 values, NULL, true, SPI_OK_SELECT);
		jobs = MemoryContextAlloc(s->tick_cxt, sizeof(int64) * Max(SPI_processed, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			jobs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1, &isnull));
		}
		count = (int) SPI_processed;
		SPI_finish();
		buildlog_worker_commit();
	}
	PG_CATCH();
	{
		buildlog_worker_abort(s->loop_cxt, "finding due jobs failed", msg, sizeof(msg));
		log_once(s, WARNING, msg);
		count = 0;
	}
	PG_END_TRY();
	*n = count;
	return jobs;
}

/*
 * Back a failing job off (buildlog.aggregate_failed(), its own transaction):
 * it is retried later and later instead of every second, and aggregatable()
 * puts healthy jobs first, so failures never crowd out due work.
 */
static void
record_failure(Scheduler *s, int64 job_id, const char *error)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	char		msg[BUILDLOG_TEXT_LEN];

	PG_TRY();
	{
		buildlog_worker_begin("buildlog scheduler: backing off a failing job");
		SPI_connect();
		values[0] = Int64GetDatum(job_id);
		values[1] = CStringGetTextDatum(error);
		buildlog_run(buildlog_plan(&failed_plan,
								   "select buildlog.aggregate_failed($1, $2)", 2, types),
					 values, NULL, false, SPI_OK_SELECT);
		SPI_finish();
		buildlog_worker_commit();
	}
	PG_CATCH();
	{
		buildlog_worker_abort(s->loop_cxt, "recording a failed aggregation failed",
							  msg, sizeof(msg));
		log_once(s, WARNING, msg);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(s->loop_cxt);
}

/* Aggregate one job in its own transaction; false after an ERROR. */
static bool
aggregate_one(Scheduler *s, int64 job_id, int64 *merged)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	volatile bool ok = false;
	char		msg[BUILDLOG_TEXT_LEN];
	char		what[64];

	PG_TRY();
	{
		buildlog_worker_begin("buildlog scheduler: aggregating");
		SPI_connect();
		buildlog_run(buildlog_plan(&aggregate_plan,
								   "select buildlog.aggregate($1)", 1, types),
					 values, NULL, false, SPI_OK_SELECT);
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

			*merged = isnull ? 0 : DatumGetInt32(d);
		}
		SPI_finish();
		buildlog_worker_commit();
		ok = true;
	}
	PG_CATCH();
	{
		snprintf(what, sizeof(what), "aggregating job " INT64_FORMAT " failed", job_id);
		if (buildlog_worker_abort(s->loop_cxt, what, msg, sizeof(msg)) == ERRCODE_LOCK_NOT_AVAILABLE)
			pg_atomic_fetch_add_u64(&s->stats->deferred, 1);	/* being archived */
		else
		{
			log_once(s, WARNING, msg);
			pg_atomic_fetch_add_u64(&s->stats->aggregate_failures, 1);
			record_failure(s, job_id, msg);
		}
	}
	PG_END_TRY();
	return ok;
}

/*
 * One aggregation round over the due jobs.  True when the round was full
 * and made progress: more jobs may be due, so the next round starts at once.
 */
static bool
aggregate_due(Scheduler *s)
{
	int			n;
	int64	   *jobs = due_jobs(s, &n);
	int			done = 0;
	int			failed = 0;

	for (int i = 0; i < n && failed < FAILURES_PER_ROUND; i++)
	{
		int64		merged = 0;

		CHECK_FOR_INTERRUPTS();
		if (aggregate_one(s, jobs[i], &merged))
		{
			done++;
			pg_atomic_fetch_add_u64(&s->stats->aggregated, 1);
			pg_atomic_fetch_add_u64(&s->stats->parts_merged, (uint64) merged);
		}
		else
			failed++;
	}
	pg_atomic_write_u64(&s->stats->last_round, (uint64) GetCurrentTimestamp());
	/* cut short by failures: the jobs behind them are due now */
	if (failed >= FAILURES_PER_ROUND)
		return true;
	return n == JOBS_PER_TICK && done > 0;
}

/* Run buildlog.run_maintenance() when due; records what it did. */
static void
maintain_if_due(Scheduler *s)
{
	TimestampTz now = GetCurrentTimestamp();
	char		msg[BUILDLOG_TEXT_LEN];
	volatile bool ok = false;

	if (buildlog_maintenance_interval_s <= 0 || now < s->next_maintenance)
		return;
	PG_TRY();
	{
		buildlog_worker_begin("buildlog scheduler: partition maintenance");
		SPI_connect();
		buildlog_run(buildlog_plan(&maintenance_plan,
								   "select pg_catalog.to_jsonb(m)::text"
								   " from buildlog.run_maintenance() m", 0, NULL),
					 NULL, NULL, false, SPI_OK_SELECT);
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

			strlcpy(msg, isnull ? "" : TextDatumGetCString(d), sizeof(msg));
		}
		SPI_finish();
		buildlog_worker_commit();
		ok = true;
	}
	PG_CATCH();
	{
		buildlog_worker_abort(s->loop_cxt, "partition maintenance failed, retrying in 60 s", msg, sizeof(msg));
		log_once(s, WARNING, msg);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(s->loop_cxt);
	if (ok)
	{
		pg_atomic_fetch_add_u64(&s->stats->maintenance_runs, 1);
		buildlog_scheduler_set_maintenance(s->stats, msg);
		ereport(DEBUG1, (errmsg("buildlog scheduler: partition maintenance: %s", msg)));
		s->next_maintenance = TimestampTzPlusMilliseconds(now,
														  (int64) buildlog_maintenance_interval_s * 1000);
	}
	else
		s->next_maintenance = TimestampTzPlusMilliseconds(now, MAINTENANCE_RETRY_S * 1000);
}

void
buildlog_scheduler_main(Datum arg)
{
	Scheduler	s;

	memset(&s, 0, sizeof(s));
	buildlog_worker_signals();

	s.stats = buildlog_scheduler_claim();
	s.loop_cxt = AllocSetContextCreate(TopMemoryContext, "buildlog scheduler",
									   ALLOCSET_DEFAULT_SIZES);
	s.tick_cxt = AllocSetContextCreate(s.loop_cxt, "buildlog scheduler tick",
									   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(s.loop_cxt);
	buildlog_worker_connect();
	/* a log being archived holds its row lock: skip it this round */
	SetConfigOption("lock_timeout", AGGREGATE_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION);
	/* first maintenance a minute after start: premake is two days ahead */
	s.next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60 * 1000);

	for (;;)
	{
		bool		backlog = false;

		CHECK_FOR_INTERRUPTS();
		buildlog_worker_reload("buildlog scheduler");
		MemoryContextReset(s.tick_cxt);
		/* the library's SQL needs its own schema: wait for ALTER EXTENSION UPDATE */
		if (buildlog_worker_extension_ready("buildlog scheduler", &s.waiting_for_extension) &&
			buildlog_worker_schema_current("buildlog scheduler", &s.waiting_for_update))
		{
			backlog = aggregate_due(&s);
			maintain_if_due(&s);
		}
		MemoryContextSwitchTo(s.loop_cxt);
		if (!backlog)
			buildlog_worker_wait(s.waiting_for_extension ? 5000 : TICK_MS);
	}
}
