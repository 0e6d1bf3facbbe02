/*-------------------------------------------------------------------------
 * worker.h
 *	  What every buildlog background worker does the same way: registration,
 *	  signals, waiting, transactions, and waiting for the extension.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WORKER_H
#define BUILDLOG_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Seconds before the postmaster restarts a worker that exited with an error. */
#define BUILDLOG_WORKER_RESTART_SECONDS 10

/*
 * Register worker number index (0-based) of kind ("drain", "scheduler",
 * "archive") running function; named "buildlog <kind> <index + 1>", or
 * "buildlog <kind>" for a single worker (numbered = false).
 */
extern void buildlog_worker_register(const char *kind, const char *function,
									 int index, bool numbered);

/* SIGTERM ends the worker (die), SIGHUP sets ConfigReloadPending. */
extern void buildlog_worker_signals(void);

/* Connect to buildlog.database as the bootstrap superuser, JIT off. */
extern void buildlog_worker_connect(void);

/*
 * Apply a pending SIGHUP; a changed buildlog.database restarts the worker
 * (it cannot switch databases).  Returns whether settings were reloaded.
 */
extern bool buildlog_worker_reload(const char *who);

/* Sleep on the latch for up to ms (or until a signal); serves interrupts. */
extern void buildlog_worker_wait(long ms);

/*
 * Is the extension installed in buildlog.database?  Says so once when it
 * is missing (*waiting remembers) and once when it appears.
 */
extern bool buildlog_worker_extension_ready(const char *who, bool *waiting);

/* The last problem a worker logged, so that repeats stay quiet. */
#define BUILDLOG_WORKER_LOG_LEN 512
typedef struct WorkerLogLimit
{
	char		last[BUILDLOG_WORKER_LOG_LEN];
	TimestampTz at;
} WorkerLogLimit;

/*
 * Log "<who>: <msg>" at level unless it repeats the last text logged; with
 * repeat_s > 0 a repeat is logged again once that many seconds have passed.
 * Returns whether it was logged.
 */
extern bool buildlog_worker_log(WorkerLogLimit *limit, int level, const char *who,
								const char *msg, int repeat_s);

/* Forget the last text logged (after a recovery: the next problem is news). */
extern void buildlog_worker_log_reset(WorkerLogLimit *limit);

/*
 * In PG_CATCH: abort the transaction, put "<what>: <message>" into msg and
 * switch to cxt.  Returns the error's SQLSTATE.
 */
extern int	buildlog_worker_abort(MemoryContext cxt, const char *what,
								  char *msg, size_t len);

/* Start a transaction with a snapshot and an activity line, and commit it. */
extern void buildlog_worker_begin(const char *activity);
extern void buildlog_worker_commit(void);

#endif							/* BUILDLOG_WORKER_H */
