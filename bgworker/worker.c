/*-------------------------------------------------------------------------
 * worker.c
 *	  What every buildlog background worker does the same way.
 *
 * The rules they share (bgworker-notes.md): registered only when preloaded,
 * restarted after 10 s rather than at once, SIGTERM handled by die() so
 * CHECK_FOR_INTERRUPTS() ends them promptly, waits on the latch with
 * WL_EXIT_ON_PM_DEATH, transactions reported to pgstat, and one log line,
 * not one per second, while the extension is missing.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "../extension/guc.h"
#include "worker.h"

void
buildlog_worker_register(const char *kind, const char *function, int index,
						 bool numbered)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BUILDLOG_WORKER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "buildlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	if (numbered)
		snprintf(worker.bgw_name, BGW_MAXLEN, "buildlog %s %d", kind, index + 1);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "buildlog %s", kind);
	snprintf(worker.bgw_type, BGW_MAXLEN, "buildlog %s", kind);
	memcpy(worker.bgw_extra, &index, sizeof(index));
	RegisterBackgroundWorker(&worker);
}

void
buildlog_worker_signals(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
}

void
buildlog_worker_connect(void)
{
	BackgroundWorkerInitializeConnection(buildlog_database, NULL, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	/* small fixed queries on big tables: JIT would cost more than it saves */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);
}

bool
buildlog_worker_reload(const char *who)
{
	char	   *database;

	if (!ConfigReloadPending)
		return false;
	ConfigReloadPending = false;
	database = pstrdup(buildlog_database);
	ProcessConfigFile(PGC_SIGHUP);
	if (strcmp(database, buildlog_database) != 0)
	{
		ereport(LOG, (errmsg("%s: buildlog.database changed, restarting", who)));
		proc_exit(1);
	}
	pfree(database);
	return true;
}

void
buildlog_worker_wait(long ms)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   Max(ms, 0), PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

bool
buildlog_worker_extension_ready(const char *who, bool *waiting)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ready;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	ready = OidIsValid(get_extension_oid("buildlog", true));
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	if (!ready && !*waiting)
		ereport(LOG,
				(errmsg("%s: extension buildlog is not installed in database \"%s\"; waiting",
						who, buildlog_database),
				 errhint("Run CREATE EXTENSION buildlog in database \"%s\", or set buildlog.database.",
						 buildlog_database)));
	else if (ready && *waiting)
		ereport(LOG, (errmsg("%s: extension buildlog found", who)));
	*waiting = !ready;
	return ready;
}

bool
buildlog_worker_log(WorkerLogLimit *limit, int level, const char *who,
					const char *msg, int repeat_s)
{
	TimestampTz now = GetCurrentTimestamp();

	if (strcmp(limit->last, msg) == 0 &&
		(repeat_s <= 0 ||
		 !TimestampDifferenceExceeds(limit->at, now, repeat_s * 1000)))
		return false;
	strlcpy(limit->last, msg, sizeof(limit->last));
	limit->at = now;
	ereport(level, (errmsg("%s: %s", who, msg)));
	return true;
}

void
buildlog_worker_log_reset(WorkerLogLimit *limit)
{
	limit->last[0] = '\0';
}

int
buildlog_worker_abort(MemoryContext cxt, const char *what, char *msg, size_t len)
{
	ErrorData  *edata;
	int			sqlerrcode;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	snprintf(msg, len, "%s: %s", what, edata->message);
	sqlerrcode = edata->sqlerrcode;
	FreeErrorData(edata);
	pgstat_report_activity(STATE_IDLE, NULL);
	return sqlerrcode;
}

void
buildlog_worker_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
buildlog_worker_commit(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
