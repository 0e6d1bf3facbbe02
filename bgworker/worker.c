/*-------------------------------------------------------------------------
 * worker.c
 *	  What every buildlog background worker does the same way.
 *
 * The rules they share (bgworker-notes.md): registered only when preloaded,
 * restarted after 10 s rather than at once, SIGTERM handled by die() so
 * CHECK_FOR_INTERRUPTS() ends them promptly, waits on the latch with
 * WL_EXIT_ON_PM_DEATH, transactions reported to pgstat, and one log line,
 * not one per second, while the extension is missing.  Their sessions pin
 * durable commits, a safe search_path and no timeouts whatever the server,
 * database or role defaults; pg_cancel_backend() cancels only a running
 * unit of work (an idle worker ignores it); problems are logged at most
 * once per kind and interval.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <signal.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "lib/ilist.h"
#include "postmaster/bgworker.h"
#include "postmaster/bgworker_internals.h"
#include "postmaster/interrupt.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "worker.h"

/* SIGTERM ends the worker (die), SIGHUP sets ConfigReloadPending. */
static void buildlog_worker_signals(void);

/*
 * Mark the start (true) and end (false) of a unit of work that runs in
 * PG_TRY: pg_cancel_backend() aborts it; outside one it is ignored.
 * buildlog_worker_begin/commit/abort do this themselves.
 */
static void buildlog_worker_set_cancellable(bool on);

/*
 * Is the installed extension at BUILDLOG_SCHEMA_VERSION or later?  Workers whose SQL
 * needs the new schema wait until it is; says so once (*told remembers).
 */
static bool buildlog_worker_schema_current(const char *who, bool *told);

/*
 * Log "<who>: <msg>" at level unless a message of the same kind was logged
 * less than repeat_s seconds ago (repeat_s <= 0: 300 s).  Returns whether
 * it was logged.
 */
static bool buildlog_worker_log(WorkerLogLimit *limit, int level, const char *who,
								const char *msg, int repeat_s);

/*
 * Is the extension installed in buildlog.database?  Says so once when it
 * is missing (*waiting remembers) and once when it appears.
 */
static bool buildlog_worker_extension_ready(const char *who, bool *waiting);

/*
 * Connect to buildlog.database as the bootstrap superuser, JIT off, with
 * durable commits, a safe search_path and no timeouts, whatever the
 * server, database or role defaults say.
 */
static void buildlog_worker_connect(void);

/*
 * True while a unit of work (a transaction inside PG_TRY) runs: only then
 * does pg_cancel_backend() cancel something.  Read by the SIGINT handler.
 */
static volatile sig_atomic_t cancellable = false;

/* Default interval of the log limiter when the caller gives none. */
#define LOG_DEFAULT_REPEAT_S	300

/*
 * Register one worker with the postmaster.  Workers start once recovery is
 * over (on a standby: when it is promoted), unless start says otherwise.
 */
static void
register_worker(const char *kind, const char *function, int index, bool numbered,
				int total, BgWorkerStartTime start)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = start;
	worker.bgw_restart_time = BUILDLOG_WORKER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "buildlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	if (numbered)
		snprintf(worker.bgw_name, BGW_MAXLEN, "buildlog %s %d", kind, index + 1);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "buildlog %s", kind);
	snprintf(worker.bgw_type, BGW_MAXLEN, "buildlog %s", kind);
	memcpy(worker.bgw_extra, &index, sizeof(index));
	memcpy(worker.bgw_extra + sizeof(index), &total, sizeof(total));
	RegisterBackgroundWorker(&worker);
}

void
buildlog_worker_register(const char *kind, const char *function, int index,
						 bool numbered)
{
	buildlog_worker_register_n(kind, function, index, numbered, 0);
}

void
buildlog_worker_register_n(const char *kind, const char *function, int index,
						   bool numbered, int total)
{
	register_worker(kind, function, index, numbered, total, BgWorkerStart_RecoveryFinished);
}

void
buildlog_worker_register_at(const char *kind, const char *function, BgWorkerStartTime start)
{
	register_worker(kind, function, 0, false, 0, start);
}

int
buildlog_worker_slots_free(void)
{
	slist_iter	iter;
	int			used = 0;

	slist_foreach(iter, &BackgroundWorkerList)
		used++;
	return max_worker_processes - used;
}

/*
 * SIGINT (pg_cancel_backend): cancel the running unit of work, if any.  An
 * idle worker has nothing to cancel; the default handler would make the
 * next CHECK_FOR_INTERRUPTS() outside PG_TRY raise an ERROR that ends it.
 */
static void
cancel_handler(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (cancellable && !proc_exit_inprogress)
	{
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
buildlog_worker_signals(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, cancel_handler);
	BackgroundWorkerUnblockSignals();
}

static void
buildlog_worker_set_cancellable(bool on)
{
	cancellable = on;
	/* a cancel that came too late for the unit of work cancels nothing */
	if (!on)
		QueryCancelPending = false;
}

/*
 * Settings a server, database or role default could set to something that
 * breaks a worker: pinned with PGC_S_OVERRIDE, which beats postgresql.conf,
 * ALTER SYSTEM, ALTER DATABASE and ALTER ROLE (also on reload), while a
 * function's own SET clause still applies inside it.
 */
static const char *const pinned_settings[][2] = {
	/* ack only after a durable commit (the broker forgets acked messages) */
	{"synchronous_commit", "on"},
	/* a database owner's search_path must not run code as the superuser */
	{"search_path", "pg_catalog, pg_temp"},
	{"default_transaction_isolation", "read committed"},
	/*
	 * (default_transaction_read_only is honoured, not pinned: it is how
	 * pg_auto_failover fences a promoted node until the old primary is
	 * surely demoted; the workers then back off, keeping their data.)
	 */
	{"default_transaction_deferrable", "off"},
	{"statement_timeout", "0"},
	{"idle_in_transaction_session_timeout", "0"},
	{"idle_session_timeout", "0"},
	{"session_replication_role", "origin"},
};

static void
buildlog_worker_connect(void)
{
	BackgroundWorkerInitializeConnection(buildlog_database, NULL, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	for (int i = 0; i < lengthof(pinned_settings); i++)
		SetConfigOption(pinned_settings[i][0], pinned_settings[i][1],
						PGC_SUSET, PGC_S_OVERRIDE);
	/* small fixed queries on big tables: JIT would cost more than it saves */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);
}

int
buildlog_worker_reload(BuildlogWorker *w)
{
	uint64		generation = pg_atomic_read_u64(&buildlog_shared->generation);
	int			found = 0;
	char	   *database;

	if (generation != w->generation)
	{
		w->generation = generation;
		ConfigReloadPending = true; /* read the file now, whatever the SIGHUP does */
		found |= WORKER_RESTARTED;
		buildlog_backoff_reset(&w->backoff);
		buildlog_worker_log_reset(&w->log);
	}
	if (!ConfigReloadPending)
		return found;
	ConfigReloadPending = false;
	database = pstrdup(buildlog_database);
	ProcessConfigFile(PGC_SIGHUP);
	if (strcmp(database, buildlog_database) != 0)
	{
		ereport(LOG, (errmsg("%s: buildlog.database changed, restarting", w->name)));
		proc_exit(1);
	}
	pfree(database);
	return found | WORKER_RELOADED;
}

void
buildlog_worker_wait(long ms)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   Max(ms, 0), PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	buildlog_worker_check_interrupts();
}

void
buildlog_worker_check_interrupts(void)
{
	/* idle: a cancel cancels nothing (cancel_handler sets none, but be sure) */
	if (!cancellable)
		QueryCancelPending = false;
	CHECK_FOR_INTERRUPTS();
}

static bool
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

/* Is version a.b.c at least minimum x.y.z (numerically; garbage is not)? */
static bool
version_at_least(const char *version, const char *minimum)
{
	int			v[3] = {0, 0, 0};
	int			m[3] = {0, 0, 0};

	if (sscanf(version, "%d.%d.%d", &v[0], &v[1], &v[2]) < 2 ||
		sscanf(minimum, "%d.%d.%d", &m[0], &m[1], &m[2]) < 2)
		return false;
	for (int i = 0; i < 3; i++)
		if (v[i] != m[i])
			return v[i] > m[i];
	return true;
}

static bool
buildlog_worker_schema_current(const char *who, bool *told)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		current = false;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("buildlog"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		current = !isnull &&
			version_at_least(TextDatumGetCString(d), BUILDLOG_SCHEMA_VERSION);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	if (!current && !*told)
		ereport(LOG,
				(errmsg("%s: the installed extension buildlog is older than version %s; waiting for the update",
						who, BUILDLOG_SCHEMA_VERSION),
				 errhint("Run ALTER EXTENSION buildlog UPDATE in database \"%s\".",
						 buildlog_database)));
	*told = !current;
	return current;
}

/*
 * The kind of a message: its text with every run of digits replaced by
 * "#", so "aggregating job 17 failed" and "... job 18 ..." are one kind.
 */
static void
message_kind(const char *msg, char *kind, size_t len)
{
	size_t		o = 0;

	for (const char *p = msg; *p != '\0' && o + 1 < len; p++)
	{
		if (isdigit((unsigned char) *p))
		{
			while (isdigit((unsigned char) p[1]))
				p++;
			kind[o++] = '#';
		}
		else
			kind[o++] = *p;
	}
	kind[o] = '\0';
}

/* The limiter's entry for a kind: found, a free or expired one, or NULL. */
static WorkerLogKind *
find_kind(WorkerLogLimit *limit, const char *kind, TimestampTz now, int repeat_ms)
{
	WorkerLogKind *free_slot = NULL;
	WorkerLogKind *oldest = NULL;
	WorkerLogKind *reuse;

	for (int i = 0; i < BUILDLOG_WORKER_LOG_KINDS; i++)
	{
		WorkerLogKind *k = &limit->kinds[i];

		if (k->at == 0)
		{
			if (free_slot == NULL)
				free_slot = k;
		}
		else if (strcmp(k->kind, kind) == 0)
			return k;
		else if (TimestampDifferenceExceeds(k->at, now, repeat_ms) &&
				 (oldest == NULL || k->at < oldest->at))
			oldest = k;
	}
	reuse = free_slot ? free_slot : oldest;
	if (reuse != NULL)
	{
		strlcpy(reuse->kind, kind, sizeof(reuse->kind));
		reuse->at = 0;
		reuse->suppressed = 0;
	}
	return reuse;
}

/*
 * Is a line of this kind due (the first, or repeat_ms after the last)?  If
 * so it is stamped now and *suppressed says how many were held back since;
 * if not it is counted as held back.
 */
static bool
kind_due(WorkerLogKind *k, TimestampTz now, int repeat_ms, int64 *suppressed)
{
	if (k->at != 0 && !TimestampDifferenceExceeds(k->at, now, repeat_ms))
	{
		k->suppressed++;
		return false;
	}
	*suppressed = k->suppressed;
	k->at = now;
	k->suppressed = 0;
	return true;
}

/* Log msg at level unless its kind was logged within repeat_s; whether it was. */
static bool
buildlog_worker_log(WorkerLogLimit *limit, int level, const char *who,
					const char *msg, int repeat_s)
{
	TimestampTz now = GetCurrentTimestamp();
	int			repeat_ms = (repeat_s > 0 ? repeat_s : LOG_DEFAULT_REPEAT_S) * 1000;
	char		kind[BUILDLOG_WORKER_LOG_LEN];
	WorkerLogKind *k;
	int64		suppressed;

	message_kind(msg, kind, sizeof(kind));
	k = find_kind(limit, kind, now, repeat_ms);
	if (k == NULL)
	{
		/* more kinds than slots within one interval: one line for all */
		if (!kind_due(&limit->other, now, repeat_ms, &suppressed))
			return false;
		ereport(level,
				(errmsg("%s: %s", who, msg),
				 errdetail("Too many kinds of problems at once: others like it are suppressed for %d s (%lld were).",
						   repeat_ms / 1000, (long long) suppressed)));
		return true;
	}
	if (!kind_due(k, now, repeat_ms, &suppressed))
		return false;
	if (suppressed > 0)
		ereport(level,
				(errmsg("%s: %s", who, msg),
				 errdetail("%lld similar messages were suppressed since the last one like it.",
						   (long long) suppressed)));
	else
		ereport(level, (errmsg("%s: %s", who, msg)));
	return true;
}

void
buildlog_worker_log_reset(WorkerLogLimit *limit)
{
	memset(limit, 0, sizeof(*limit));
}

/* The errdetail of the error buildlog_worker_abort() caught last. */
static char last_detail[BUILDLOG_TEXT_LEN];

const char *
buildlog_worker_error_detail(void)
{
	return last_detail;
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
	buildlog_worker_set_cancellable(false);
	MemoryContextSwitchTo(cxt);
	snprintf(msg, len, "%s: %s", what, edata->message);
	strlcpy(last_detail, edata->detail ? edata->detail : "", sizeof(last_detail));
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
	buildlog_worker_set_cancellable(true);
}

/*
 * Whether commits wait for synchronous standbys (as SyncRepWaitForLSN
 * decides it; the field changed shape in a PostgreSQL 15 minor release).
 * The caller holds SyncRepLock.
 */
static bool
sync_standbys_defined(void)
{
#ifdef SYNC_STANDBY_DEFINED
	if (!(WalSndCtl->sync_standbys_status & SYNC_STANDBY_INIT))
		return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
	return (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
#else
	return WalSndCtl->sync_standbys_defined;
#endif
}

/*
 * Whether this process's last commit record reached the synchronous
 * standbys it had to wait for.  A wait cut short (the postmaster gone, a
 * shutdown, a cancel) returns from the commit as if it had: the transaction
 * is committed here but perhaps on no standby, so a promoted standby may not
 * have it.
 */
static bool
last_commit_replicated(void)
{
	XLogRecPtr	lsn = XactLastCommitEnd;
	int			mode;
	bool		replicated;

	if (XLogRecPtrIsInvalid(lsn) || !SyncRepRequested())
		return true;
	mode = synchronous_commit == SYNCHRONOUS_COMMIT_REMOTE_WRITE ? SYNC_REP_WAIT_WRITE :
		synchronous_commit == SYNCHRONOUS_COMMIT_REMOTE_APPLY ? SYNC_REP_WAIT_APPLY :
		SYNC_REP_WAIT_FLUSH;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	replicated = !sync_standbys_defined() || lsn <= WalSndCtl->lsn[mode];
	LWLockRelease(SyncRepLock);
	return replicated;
}

void
buildlog_worker_commit(void)
{
	/* only a transaction with an xid writes a commit record and waits */
	bool		waits = TransactionIdIsValid(GetTopTransactionIdIfAny());

	buildlog_worker_set_cancellable(false);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Never acknowledge what a failover could lose: exit before any caller
	 * acks a delivery or answers 2xx.  The broker redelivers and clients
	 * retry; what is already stored is found there again.
	 */
	if (waits && !last_commit_replicated())
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("%s: a commit is not known to have reached the synchronous standby",
						MyBgworkerEntry ? MyBgworkerEntry->bgw_name : "buildlog"),
				 errdetail("The wait for synchronous replication was cut short (shutdown, the postmaster gone, or a cancel); nothing of that transaction is acknowledged."),
				 errhint("The worker exits; what it wrote is written again or found already stored when its work is redone.")));
}

void
buildlog_worker_begin_spi(const char *activity)
{
	buildlog_worker_begin(activity);
	SPI_connect();
}

void
buildlog_worker_commit_spi(void)
{
	SPI_finish();
	buildlog_worker_commit();
}

void
buildlog_worker_rollback_spi(void)
{
	buildlog_worker_set_cancellable(false);
	SPI_finish();
	PopActiveSnapshot();
	AbortCurrentTransaction();
	pgstat_report_activity(STATE_IDLE, NULL);
}

int
buildlog_backoff_next(WorkerBackoff *b)
{
	b->ms = b->ms == 0 ? b->min_ms : Min(b->ms * 2, b->max_ms);
	return b->ms;
}

void
buildlog_backoff_reset(WorkerBackoff *b)
{
	b->ms = 0;
}

void
buildlog_worker_start(BuildlogWorker *w, WorkerSlot *slot, int backoff_min_ms,
					  int backoff_max_ms, int log_repeat_s)
{
	w->name = MyBgworkerEntry->bgw_name;
	w->slot = slot;
	w->backoff.min_ms = backoff_min_ms;
	w->backoff.max_ms = backoff_max_ms;
	w->log_repeat_s = log_repeat_s;
	w->generation = pg_atomic_read_u64(&buildlog_shared->generation);
	buildlog_worker_signals();
	buildlog_slot_claim(slot);
	w->loop_cxt = AllocSetContextCreate(TopMemoryContext, "buildlog worker",
										ALLOCSET_DEFAULT_SIZES);
	w->step_cxt = AllocSetContextCreate(w->loop_cxt, "buildlog worker step",
										ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(w->loop_cxt);
	buildlog_worker_connect();
}

bool
buildlog_worker_ready(BuildlogWorker *w)
{
	return buildlog_worker_extension_ready(w->name, &w->waiting_for_extension) &&
		buildlog_worker_schema_current(w->name, &w->waiting_for_update);
}

void
buildlog_worker_problem(BuildlogWorker *w, int level, const char *msg)
{
	buildlog_slot_set_error(w->slot, msg);
	buildlog_worker_log(&w->log, level, w->name, msg, w->log_repeat_s);
}

int
buildlog_worker_run_step(BuildlogWorker *w, const char *what, WorkerStep step, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int result = WORKER_STEP_ERROR;

	PG_TRY();
	{
		result = step(w, arg);
	}
	PG_CATCH();
	{
		char		failed[128];

		snprintf(failed, sizeof(failed), "%s failed", what);
		w->sqlerrcode = buildlog_worker_abort(cxt, failed, w->error, sizeof(w->error));
		w->error_message = w->error + Min(strlen(failed) + 2, strlen(w->error));
		result = WORKER_STEP_ERROR;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return result;
}
