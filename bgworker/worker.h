/*-------------------------------------------------------------------------
 * worker.h
 *	  The skeleton every buildlog background worker is built on:
 *	  registration, signals, its slot and memory contexts, reloads, waiting,
 *	  steps run in transactions that survive their ERROR, back-off, the log
 *	  limiter, and waiting for the extension.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WORKER_H
#define BUILDLOG_WORKER_H

#include "postgres.h"

#include "postmaster/bgworker.h"

#include "datatype/timestamp.h"

#include "shmem.h"

/* Seconds before the postmaster restarts a worker that exited with an error. */
#define BUILDLOG_WORKER_RESTART_SECONDS 10

/*
 * Register worker number index (0-based) of kind ("drain", "scheduler",
 * "archive") running function; named "buildlog <kind> <index + 1>", or
 * "buildlog <kind>" for a single worker (numbered = false).
 */
extern void buildlog_worker_register(const char *kind, const char *function,
									 int index, bool numbered);

/* The same, telling each worker that total of its kind were registered. */
extern void buildlog_worker_register_n(const char *kind, const char *function,
									   int index, bool numbered, int total);

/* Register a worker that starts at start (e.g. on a standby, from a consistent state on). */
extern void buildlog_worker_register_at(const char *kind, const char *function,
										BgWorkerStartTime start);

/*
 * Background worker slots (max_worker_processes) not yet taken by workers
 * registered so far (the logical replication launcher, other libraries).
 */
extern int	buildlog_worker_slots_free(void);

/* Sleep on the latch for up to ms (or until a signal); serves interrupts. */
extern void buildlog_worker_wait(long ms);

/*
 * CHECK_FOR_INTERRUPTS() for a worker outside its units of work: a pending
 * cancel (pg_cancel_backend) is dropped there, never raised.
 */
extern void buildlog_worker_check_interrupts(void);

/*
 * The oldest schema version the workers' SQL runs on (older ones wait for
 * ALTER EXTENSION ... UPDATE).
 */
#define BUILDLOG_SCHEMA_VERSION "0.3.0"

/*
 * The log limiter: each kind of problem (the text with digit runs
 * normalised) is logged at most once per interval, with the number of
 * repeats suppressed meanwhile on its next line.  A small fixed table of
 * kinds; when more kinds arrive within one interval they share one slot.
 */
#define BUILDLOG_WORKER_LOG_LEN 512
#define BUILDLOG_WORKER_LOG_KINDS 16
typedef struct WorkerLogKind
{
	char		kind[BUILDLOG_WORKER_LOG_LEN];
	TimestampTz at;				/* last logged, 0 = free slot */
	int64		suppressed;		/* repeats not logged since */
} WorkerLogKind;

typedef struct WorkerLogLimit
{
	WorkerLogKind kinds[BUILDLOG_WORKER_LOG_KINDS];
	WorkerLogKind other;		/* kinds that found no slot */
} WorkerLogLimit;

/* Forget what was logged (after a recovery: the next problem is news). */
extern void buildlog_worker_log_reset(WorkerLogLimit *limit);

/*
 * In PG_CATCH: abort the transaction, put "<what>: <message>" into msg and
 * switch to cxt.  Returns the error's SQLSTATE.
 */
extern int	buildlog_worker_abort(MemoryContext cxt, const char *what,
								  char *msg, size_t len);

/*
 * The errdetail of the error buildlog_worker_abort() (or a failed step)
 * caught last, "" without one; only for errors whose detail holds no secret.
 */
extern const char *buildlog_worker_error_detail(void);

/* Start a transaction with a snapshot and an activity line, and commit it. */
extern void buildlog_worker_begin(const char *activity);
extern void buildlog_worker_commit(void);

/* The same with an SPI connection, and a rollback of such a transaction. */
extern void buildlog_worker_begin_spi(const char *activity);
extern void buildlog_worker_commit_spi(void);
extern void buildlog_worker_rollback_spi(void);

/*
 * Exponential back-off: the first wait is min_ms, each next one doubles, up
 * to max_ms; reset after a success.
 */
typedef struct WorkerBackoff
{
	int			min_ms;
	int			max_ms;
	int			ms;				/* the last wait, 0 = not backing off */
} WorkerBackoff;

/* The wait before the next try (and remember it). */
extern int	buildlog_backoff_next(WorkerBackoff *b);

/* A success: the next failure waits min_ms again. */
extern void buildlog_backoff_reset(WorkerBackoff *b);

/*
 * The skeleton every worker is built on: its statistics slot, its memory
 * contexts, its log limiter and back-off, what it is waiting for, and the
 * error of its last failed step.  A worker's own struct starts with one.
 */
typedef struct BuildlogWorker
{
	const char *name;			/* bgw_name, the prefix of every log line */
	WorkerSlot *slot;			/* the header of its statistics */
	MemoryContext loop_cxt;		/* lives as long as the worker */
	MemoryContext step_cxt;		/* reset by the worker for each unit of work */
	WorkerLogLimit log;
	int			log_repeat_s;	/* the same problem logged at most this often */
	WorkerBackoff backoff;
	uint64		generation;		/* the restart_workers() count last seen */
	bool		waiting_for_extension;
	bool		waiting_for_update; /* the schema is older than the library */
	char		error[BUILDLOG_TEXT_LEN];	/* "<what> failed: <message>" */
	const char *error_message;	/* the <message> alone, inside error */
	int			sqlerrcode;		/* of the last failed step */
} BuildlogWorker;

/*
 * Start the skeleton: signals, the slot (claimed, released at exit), the
 * memory contexts (loop_cxt current), the database session.
 */
extern void buildlog_worker_start(BuildlogWorker *w, WorkerSlot *slot,
								  int backoff_min_ms, int backoff_max_ms,
								  int log_repeat_s);

/* What buildlog_worker_reload() found. */
#define WORKER_RELOADED		0x01	/* SIGHUP: the settings were re-read */
#define WORKER_RESTARTED	0x02	/* restart_workers(): re-read, start afresh */

/*
 * Apply a pending SIGHUP or restart_workers(); a changed buildlog.database
 * restarts the worker (it cannot switch databases).  After
 * restart_workers() the back-off and the log limiter start afresh.
 */
extern int	buildlog_worker_reload(BuildlogWorker *w);

/* Is the extension installed, at this library's schema version? */
extern bool buildlog_worker_ready(BuildlogWorker *w);

/* A problem: recorded as the slot's last error and logged (rate-limited). */
extern void buildlog_worker_problem(BuildlogWorker *w, int level, const char *msg);

/* A unit of work, run by buildlog_worker_run_step(); returns its outcome. */
typedef int (*WorkerStep) (BuildlogWorker *w, void *arg);

#define WORKER_STEP_ERROR	(-1)

/*
 * Run step(w, arg) and survive its ERROR: the transaction is aborted,
 * "<what> failed: <message>" goes to w->error (the message alone at
 * w->error_message, its SQLSTATE to w->sqlerrcode) and WORKER_STEP_ERROR
 * is returned.  The memory context
 * current before the call is current after it.
 */
extern int	buildlog_worker_run_step(BuildlogWorker *w, const char *what,
									 WorkerStep step, void *arg);

#endif							/* BUILDLOG_WORKER_H */
