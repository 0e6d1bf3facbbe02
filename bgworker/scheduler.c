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
 * check; SIGHUP re-reads the settings.  Each unit of work is a step run by
 * the worker skeleton (worker.h): its own transaction, surviving its ERROR.
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
	BuildlogWorker w;			/* the skeleton: slot, contexts, log limiter */
	SchedulerStats *stats;
	TimestampTz next_maintenance;
} Scheduler;

/* The due jobs of one round (in the step context). */
typedef struct DueJobs
{
	int64	   *jobs;
	int			n;
} DueJobs;

/* One job's aggregation: which job, how many parts it merged. */
typedef struct AggregateJob
{
	int64		job_id;
	int64		merged;
} AggregateJob;

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

/* Step: read the due jobs in one short transaction. */
static int
find_due_jobs(BuildlogWorker *w, void *arg)
{
	DueJobs    *due = (DueJobs *) arg;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(JOBS_PER_TICK)};

	buildlog_worker_begin_spi("buildlog scheduler: finding due jobs");
	buildlog_run(buildlog_plan(&due_plan,
							   "select job_id from buildlog.aggregatable($1)",
							   1, types),
				 values, NULL, true, SPI_OK_SELECT);
	due->jobs = MemoryContextAlloc(w->step_cxt, sizeof(int64) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		due->jobs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 1, &isnull));
	}
	due->n = (int) SPI_processed;
	buildlog_worker_commit_spi();
	return 0;
}

/*
 * Step: back a failing job off (buildlog.aggregate_failed()): it is retried
 * later and later instead of every second, and aggregatable() puts healthy
 * jobs first, so failures never crowd out due work.
 */
static int
record_failure(BuildlogWorker *w, void *arg)
{
	AggregateJob *job = (AggregateJob *) arg;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	buildlog_worker_begin_spi("buildlog scheduler: backing off a failing job");
	values[0] = Int64GetDatum(job->job_id);
	values[1] = CStringGetTextDatum(w->error);
	buildlog_run(buildlog_plan(&failed_plan,
							   "select buildlog.aggregate_failed($1, $2)", 2, types),
				 values, NULL, false, SPI_OK_SELECT);
	buildlog_worker_commit_spi();
	return 0;
}

/* Step: aggregate one job in its own transaction. */
static int
aggregate_job(BuildlogWorker *w, void *arg)
{
	AggregateJob *job = (AggregateJob *) arg;

	buildlog_worker_begin_spi("buildlog scheduler: aggregating");
	buildlog_run_by_id(&aggregate_plan, "select buildlog.aggregate($1)",
					   job->job_id, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		job->merged = isnull ? 0 : DatumGetInt32(d);
	}
	buildlog_worker_commit_spi();
	return 0;
}

/* Aggregate one job; a failure is counted, logged and backed off. */
static bool
aggregate_one(Scheduler *s, int64 job_id)
{
	AggregateJob job = {job_id, 0};
	char		what[64];

	snprintf(what, sizeof(what), "aggregating job " INT64_FORMAT, job_id);
	if (buildlog_worker_run_step(&s->w, what, aggregate_job, &job) != WORKER_STEP_ERROR)
	{
		pg_atomic_fetch_add_u64(&s->stats->aggregated, 1);
		pg_atomic_fetch_add_u64(&s->stats->parts_merged, (uint64) job.merged);
		return true;
	}
	if (s->w.sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		pg_atomic_fetch_add_u64(&s->stats->deferred, 1);	/* being archived */
		return false;
	}
	buildlog_worker_problem(&s->w, WARNING, s->w.error);
	pg_atomic_fetch_add_u64(&s->stats->aggregate_failures, 1);
	if (buildlog_worker_run_step(&s->w, "recording a failed aggregation", record_failure,
								 &job) == WORKER_STEP_ERROR)
		buildlog_worker_problem(&s->w, WARNING, s->w.error);
	return false;
}

/*
 * One aggregation round over the due jobs.  True when the round was full
 * and made progress: more jobs may be due, so the next round starts at once.
 */
static bool
aggregate_due(Scheduler *s)
{
	DueJobs		due = {NULL, 0};
	int			done = 0;
	int			failed = 0;

	if (buildlog_worker_run_step(&s->w, "finding due jobs", find_due_jobs, &due) ==
		WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&s->w, WARNING, s->w.error);
		return false;
	}
	for (int i = 0; i < due.n && failed < FAILURES_PER_ROUND; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (aggregate_one(s, due.jobs[i]))
			done++;
		else
			failed++;
	}
	pg_atomic_write_u64(&s->stats->last_round, (uint64) GetCurrentTimestamp());
	/* cut short by failures: the jobs behind them are due now */
	if (failed >= FAILURES_PER_ROUND)
		return true;
	return due.n == JOBS_PER_TICK && done > 0;
}

/* Step: buildlog.run_maintenance(); its result as JSON into arg. */
static int
run_maintenance(BuildlogWorker *w, void *arg)
{
	char	   *result = (char *) arg;

	buildlog_worker_begin_spi("buildlog scheduler: partition maintenance");
	buildlog_run(buildlog_plan(&maintenance_plan,
							   "select pg_catalog.to_jsonb(m)::text"
							   " from buildlog.run_maintenance() m", 0, NULL),
				 NULL, NULL, false, SPI_OK_SELECT);
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		strlcpy(result, isnull ? "" : TextDatumGetCString(d), BUILDLOG_TEXT_LEN);
	}
	buildlog_worker_commit_spi();
	return 0;
}

/* Run buildlog.run_maintenance() when due; records what it did. */
static void
maintain_if_due(Scheduler *s)
{
	TimestampTz now = GetCurrentTimestamp();
	char		result[BUILDLOG_TEXT_LEN];

	if (buildlog_maintenance_interval_s <= 0 || now < s->next_maintenance)
		return;
	if (buildlog_worker_run_step(&s->w, "partition maintenance", run_maintenance,
								 result) == WORKER_STEP_ERROR)
	{
		char		msg[BUILDLOG_TEXT_LEN];

		snprintf(msg, sizeof(msg), "%s (retrying in %d s)", s->w.error, MAINTENANCE_RETRY_S);
		buildlog_worker_problem(&s->w, WARNING, msg);
		s->next_maintenance = TimestampTzPlusMilliseconds(now, MAINTENANCE_RETRY_S * 1000);
		return;
	}
	pg_atomic_fetch_add_u64(&s->stats->maintenance_runs, 1);
	buildlog_slot_set_text(&s->stats->slot, s->stats->last_maintenance, result,
						   &s->stats->last_maintenance_at);
	ereport(DEBUG1, (errmsg("%s: partition maintenance: %s", s->w.name, result)));
	s->next_maintenance = TimestampTzPlusMilliseconds(now,
													  (int64) buildlog_maintenance_interval_s * 1000);
}

void
buildlog_scheduler_main(Datum arg)
{
	Scheduler	s;

	memset(&s, 0, sizeof(s));
	s.stats = &buildlog_shared->scheduler;
	buildlog_worker_start(&s.w, &s.stats->slot, 0, 0, 0);
	/* a log being archived holds its row lock: skip it this round */
	SetConfigOption("lock_timeout", AGGREGATE_LOCK_TIMEOUT, PGC_USERSET, PGC_S_SESSION);
	/* first maintenance a minute after start: premake is two days ahead */
	s.next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60 * 1000);

	for (;;)
	{
		bool		backlog = false;

		CHECK_FOR_INTERRUPTS();
		buildlog_worker_reload(&s.w);
		MemoryContextReset(s.w.step_cxt);
		MemoryContextSwitchTo(s.w.step_cxt);
		/* the library's SQL needs its own schema: wait for ALTER EXTENSION UPDATE */
		if (buildlog_worker_ready(&s.w))
		{
			backlog = aggregate_due(&s);
			maintain_if_due(&s);
		}
		MemoryContextSwitchTo(s.w.loop_cxt);
		if (!backlog)
			buildlog_worker_wait(s.w.waiting_for_extension ? 5000 : TICK_MS);
	}
}
