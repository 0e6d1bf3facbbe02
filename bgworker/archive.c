/*-------------------------------------------------------------------------
 * archive.c
 *	  Archive workers: upload aggregated logs to S3, verify them, purge them.
 *
 * Archiving: claim one log whose content is not archived with FOR UPDATE
 * SKIP LOCKED and keep the transaction open while uploading, so the claim
 * survives nothing: a crash or an error rolls it back and the next claim
 * uploads again (a PUT replaces the object atomically).  The content is
 * streamed in slices twice (SigV4 signs the payload's SHA-256 first), so
 * memory stays bounded whatever the log size.  The row lock also keeps
 * aggregation from changing the content mid-upload.
 *
 * Verification and purge: once buildlog.purge_delay has passed since the
 * upload, the object is checked against the size, ETag and SHA-256
 * recorded at upload (HEAD; a GET hashing the stored bytes when HEAD
 * cannot prove it).  Proven: content becomes NULL, verified_at and
 * purged_at are stamped.  Missing or different: the archive facts are
 * cleared so the log is archived again; it is never purged meanwhile.
 *
 * Deletion: a removal (set_content) of a log whose object may exist leaves
 * archive_delete_since in the row.  A worker claims such a row (FOR UPDATE
 * SKIP LOCKED), DELETEs the object and HEADs it: only a 404 proves the
 * deletion, which is then stamped (archive_deleted_at).  A failure is
 * recorded in the row (attempts, next attempt after a back-off doubling to
 * 5 minutes), so it survives restarts and is never forgotten.  A row with a
 * pending deletion is not archived again until the deletion is proven (the
 * PUT of the new content must not be deleted by the old removal).
 *
 * Each of the three is an ArchiveStep: the query that claims a log, and
 * the handler that works on it in the claim's transaction.
 *
 * S3 unreachable or 5xx: the transaction rolls back, the worker backs off
 * (1 s doubling to 60 s) and nothing is purged.  4xx (credentials, bucket,
 * region): shown in archive_stats, logged at most once a minute.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
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
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "job_secrets.h"
#include "merge.h"
#include "guc.h"
#include "s3.h"
#include "spiutil.h"
#include "stream_offsets.h"
#include "archive.h"
#include "shmem.h"
#include "worker.h"

#define IDLE_WAIT_MS		1000
#define BACKOFF_MIN_MS		1000
#define BACKOFF_MAX_MS		60000
#define LOG_REPEAT_SECONDS	60	/* the same error is logged once a minute */

/* What happened to one unit of work. */
typedef enum Step
{
	STEP_IDLE,					/* nothing to do */
	STEP_DONE,					/* did something */
	STEP_FAILED					/* S3 or the database failed: back off */
} Step;

/* The log a step claimed: its job, and where its archive object is. */
typedef struct Claim
{
	int64		job_id;
	S3Target	target;
	char	   *key;
} Claim;

#define ARCHIVE_DEFERRED_MAX 1000	/* refused logs a worker remembers */
#define ARCHIVE_DEFER_S		300 /* before a refused log is tried again */

/* What a worker keeps between steps. */
typedef struct Archiver
{
	BuildlogWorker w;			/* the skeleton: slot, contexts, back-off, log */
	int			index;
	ArchiveStats *stats;
	bool		waiting_for_endpoint;
	/* logs refused (another deployment's object at their key), retried later */
	int64		deferred[ARCHIVE_DEFERRED_MAX];
	TimestampTz deferred_until[ARCHIVE_DEFERRED_MAX];
	int			ndeferred;
} Archiver;

/*
 * A step of the worker: claim one log with a query (its first column the
 * job id, $1 when nargs is 1 buildlog.purge_delay in seconds), then handle
 * it in the same transaction.
 */
typedef struct ArchiveStep
{
	const char *what;			/* in the log when the step fails */
	const char *activity;		/* in pg_stat_activity meanwhile */
	const char *sql;
	int			nargs;
	Step		(*handle) (Archiver *a, const Claim *c);
	SPIPlanPtr	plan;			/* of sql, kept once prepared */
	const char *owner;			/* this deployment's id, read with the claim */
} ArchiveStep;

/* Whose is the object at a claimed log's key? */
typedef enum ObjectOwner
{
	OBJECT_ABSENT,				/* no object */
	OBJECT_OURS,				/* ours, untagged, or adopted */
	OBJECT_FOREIGN,				/* another deployment's: never touched */
	OBJECT_UNKNOWN				/* S3 did not say (result tells why) */
} ObjectOwner;

#define DELETE_BACKOFF_MAX_S 300	/* per log, between failed deletions */

/* A removed log's object is gone (or was never this deployment's). */
#define DELETED_SQL \
	"update buildlog.logs set archive_delete_since = null," \
	" archive_delete_attempts = 0, archive_delete_after = null," \
	" archive_object = false, archive_deleted_at = now()" \
	" where job_id = $1"

/* Register buildlog.archive_workers workers; called from _PG_init. */
void
buildlog_archive_register(void)
{
	for (int i = 0; i < buildlog_archive_workers; i++)
		buildlog_worker_register("archive", "buildlog_archive_main", i, true);
}

/* An S3 failure: counted, logged (rate-limited), and a reason to back off. */
static Step
s3_failed(Archiver *a, const char *action, const S3Result *r)
{
	char		msg[BUILDLOG_TEXT_LEN];

	if (r->outcome == S3_RETRYABLE)
		pg_atomic_fetch_add_u64(&a->stats->retries, 1);
	else
		pg_atomic_fetch_add_u64(&a->stats->failures, 1);
	/* the job id changes from log to log: log the kind of failure */
	snprintf(msg, sizeof(msg), "%s failed (%s): %s", action,
			 buildlog_s3_outcome_name(r->outcome), r->error);
	buildlog_worker_problem(&a->w, r->outcome == S3_RETRYABLE ? LOG : WARNING, msg);
	return STEP_FAILED;
}

/* Fetch an int8 / text column of the first SPI row. */
static int64
row_int8(int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? -1 : DatumGetInt64(d);
}

static char *
row_text(int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? pstrdup("") : TextDatumGetCString(d);
}

/* The logs refused lately, as the claim's int8[] (expired ones forgotten). */
static Datum
deferred_array(Archiver *a)
{
	TimestampTz now = GetCurrentTimestamp();
	Datum	   *ids = palloc(sizeof(Datum) * Max(a->ndeferred, 1));
	int			n = 0;

	for (int i = 0; i < a->ndeferred; i++)
	{
		if (a->deferred_until[i] <= now)
			continue;
		a->deferred[n] = a->deferred[i];
		a->deferred_until[n] = a->deferred_until[i];
		ids[n] = Int64GetDatum(a->deferred[n]);
		n++;
	}
	a->ndeferred = n;
	return PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Leave a refused log alone for ARCHIVE_DEFER_S (the oldest is forgotten when full). */
static void
defer_log(Archiver *a, int64 job_id)
{
	if (a->ndeferred == ARCHIVE_DEFERRED_MAX)
	{
		memmove(a->deferred, a->deferred + 1, sizeof(int64) * (ARCHIVE_DEFERRED_MAX - 1));
		memmove(a->deferred_until, a->deferred_until + 1, sizeof(TimestampTz) * (ARCHIVE_DEFERRED_MAX - 1));
		a->ndeferred--;
	}
	a->deferred[a->ndeferred] = job_id;
	a->deferred_until[a->ndeferred] = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ARCHIVE_DEFER_S * 1000);
	a->ndeferred++;
}

/*
 * This deployment's id (buildlog.installation), in the step's context; NULL
 * on a schema without the table (objects are then not tagged or guarded).
 */
static const char *
installation_id(void)
{
	Oid			nsp = get_namespace_oid("buildlog", true);
	char	   *id = NULL;

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("installation", nsp)))
		return NULL;
	if (SPI_execute("select id::text from buildlog.installation", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return id;
}

/*
 * Start a step's transaction and claim the first log of its query (FOR
 * UPDATE SKIP LOCKED: the row lock is the claim, so no two workers take the
 * same log) into *claim; false when there is none (the transaction is
 * committed then).  The row stays in SPI_tuptable; in_flight is set.
 */
static bool
claim_log(Archiver *a, ArchiveStep *step, Claim *claim)
{
	Oid			types[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2] = {Int32GetDatum(buildlog_purge_delay_s), deferred_array(a)};
	SPITupleTable *claimed;

	buildlog_worker_begin_spi(step->activity);
	buildlog_run(buildlog_plan(&step->plan, step->sql, step->nargs, types),
				 values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		buildlog_worker_commit_spi();
		return false;
	}
	/* the id only once a log is claimed; the claimed row stays the one read */
	claimed = SPI_tuptable;
	step->owner = installation_id();
	SPI_tuptable = claimed;
	claim->job_id = row_int8(1);
	buildlog_s3_target(&claim->target);
	claim->target.owner = step->owner;
	claim->key = buildlog_s3_key_for_job(buildlog_s3_prefix, claim->job_id);
	pg_atomic_write_u64(&a->stats->in_flight, (uint64) claim->job_id);
	return true;
}

/*
 * Whose is the object at c->key?  A HEAD says: an object tagged with
 * another deployment's id is foreign unless buildlog.s3_adopt_objects; an
 * untagged one (uploaded before objects carried the tag) counts as ours.
 */
static ObjectOwner
object_owner(const Claim *c, S3Result *result)
{
	if (c->target.owner == NULL)
		return OBJECT_OURS;
	buildlog_s3_request_head(&c->target, c->key, result);
	if (result->outcome == S3_NOT_FOUND)
		return OBJECT_ABSENT;
	if (result->outcome != S3_OK)
		return OBJECT_UNKNOWN;
	if (result->meta_owner[0] == '\0' || strcmp(result->meta_owner, c->target.owner) == 0 ||
		buildlog_s3_adopt_objects)
		return OBJECT_OURS;
	return OBJECT_FOREIGN;
}

/* Say (through the log limiter) that another deployment's object was left alone. */
static void
foreign_object(Archiver *a, const Claim *c, const char *action, const S3Result *r)
{
	char		msg[BUILDLOG_TEXT_LEN];

	pg_atomic_fetch_add_u64(&a->stats->failures, 1);
	snprintf(msg, sizeof(msg),
			 "%s job " INT64_FORMAT " refused: the object \"%s\" belongs to another buildlog deployment (%s) and was not changed; use another bucket or buildlog.s3_prefix, or set buildlog.s3_adopt_objects = on",
			 action, c->job_id, c->key, r->meta_owner);
	buildlog_worker_problem(&a->w, WARNING, msg);
}

/* Run a kept UPDATE of the claimed log (job_id is $1) and commit. */
static void
update_claimed(SPIPlanPtr *plan, const char *sql, int64 job_id)
{
	buildlog_run_by_id(plan, sql, job_id, false, SPI_OK_UPDATE);
	buildlog_worker_commit_spi();
}

/* Upload a claimed log and record its archive; the claim is the row lock. */
static Step
archive_one(Archiver *a, const Claim *c)
{
	static SPIPlanPtr archived_plan = NULL;
	S3Source	source;
	S3DatumSource state;
	S3Digest	digest;
	S3Result	result;
	bool		gzip = (buildlog_archive_compression == BUILDLOG_COMPRESSION_GZIP);
	bool		isnull;
	TimestampTz t0;

	switch (object_owner(c, &result))
	{
		case OBJECT_UNKNOWN:
			buildlog_worker_rollback_spi();
			return s3_failed(a, "archiving", &result);
		case OBJECT_FOREIGN:
			foreign_object(a, c, "archiving", &result);
			buildlog_worker_rollback_spi();
			defer_log(a, c->job_id);
			return STEP_DONE;	/* the other logs go on */
		default:
			break;
	}
	buildlog_s3_datum_source(&source, &state,
							 SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	/*
	 * Hash the put pass again: the TOAST pages are read twice, and bytes that
	 * changed between the passes (storage faults) must abort the upload, not
	 * leave an object that differs from the SHA-256 recorded and verified.
	 */
	source.stable = false;
	t0 = GetCurrentTimestamp();
	buildlog_s3_digest(&source, gzip, &digest);
	buildlog_s3_datum_source_rewind(&state);
	buildlog_s3_request_put(&c->target, c->key, &source, gzip, &digest, &result);
	pg_atomic_write_u64(&a->stats->in_flight, 0);
	if (result.outcome != S3_OK)
	{
		buildlog_worker_rollback_spi();
		return s3_failed(a, "archiving", &result);
	}
	{
		Oid			types[5] = {INT8OID, INT8OID, TEXTOID, TEXTOID, BOOLOID};
		Datum		values[5] = {
			Int64GetDatum(c->job_id), Int64GetDatum((int64) digest.size),
			CStringGetTextDatum(digest.sha256), CStringGetTextDatum(result.etag),
			BoolGetDatum(gzip)
		};

		buildlog_run(buildlog_plan(&archived_plan,
								   "update buildlog.logs set archived_at = now(),"
								   " archive_size = $2, archive_sha256 = $3,"
								   " archive_etag = $4, archive_gzip = $5,"
								   " archive_object = true, verified_at = null"
								   " where job_id = $1", 5, types),
					 values, NULL, false, SPI_OK_UPDATE);
	}
	buildlog_worker_commit_spi();
	pg_atomic_fetch_add_u64(&a->stats->archived, 1);
	pg_atomic_fetch_add_u64(&a->stats->bytes, digest.size);
	pg_atomic_fetch_add_u64(&a->stats->busy_us,
							(uint64) (GetCurrentTimestamp() - t0));
	pg_atomic_write_u64(&a->stats->last_archived, (uint64) GetCurrentTimestamp());
	return STEP_DONE;
}

/*
 * Does the stored object match what the upload recorded?  HEAD proves it
 * with size, ETag and the x-amz-meta-sha256 the upload set; otherwise the
 * stored bytes are fetched and hashed.  *result tells S3 failures apart.
 */
static bool
archive_matches(const S3Target *target, const char *key, int64 size,
				const char *sha256, const char *etag, S3Result *result)
{
	buildlog_s3_request_head(target, key, result);
	if (result->outcome != S3_OK)
		return false;
	if (result->content_length != size)
		return false;
	if (strcmp(result->etag, etag) == 0 && strcmp(result->meta_sha256, sha256) == 0)
		return true;
	buildlog_s3_request_get(target, key, false, NULL, result);
	return result->outcome == S3_OK && result->received.size == (uint64) size &&
		strcmp(result->received.sha256, sha256) == 0;
}

/* Verify a claimed archived log; purge it or archive it again. */
static Step
verify_one(Archiver *a, const Claim *c)
{
	static SPIPlanPtr purge_plan = NULL;
	static SPIPlanPtr reset_plan = NULL;
	S3Result	result;
	int64		size;
	char	   *sha256;
	char	   *etag;
	bool		ok;

	size = row_int8(2);
	sha256 = row_text(3);
	etag = row_text(4);
	ok = archive_matches(&c->target, c->key, size, sha256, etag, &result);
	if (!ok && result.outcome != S3_OK && result.outcome != S3_NOT_FOUND)
	{
		buildlog_worker_rollback_spi();
		return s3_failed(a, "verifying", &result);
	}
	if (ok)
	{
		/* a purged log is final: its stream offset is of no more use */
		buildlog_stream_offsets_forget(c->job_id);
		/* and so are its secrets: the log is final */
		buildlog_job_secrets_forget(c->job_id);
		update_claimed(&purge_plan,
					   "update buildlog.logs set verified_at = now(),"
					   " purged_at = now(), content = null"
					   " where job_id = $1", c->job_id);
		pg_atomic_fetch_add_u64(&a->stats->verified, 1);
		pg_atomic_fetch_add_u64(&a->stats->purged, 1);
		return STEP_DONE;
	}
	update_claimed(&reset_plan,
				   "update buildlog.logs set " ARCHIVE_RESET_SQL
				   " where job_id = $1", c->job_id);
	pg_atomic_fetch_add_u64(&a->stats->reuploads, 1);
	ereport(LOG,
			(errmsg("%s: the archive of job " INT64_FORMAT " is %s; archiving it again, not purging",
					a->w.name, c->job_id,
					result.outcome == S3_NOT_FOUND ? "missing" : "different from what was uploaded")));
	return STEP_DONE;
}

/* Record a failed deletion in the row (it survives restarts) and back off. */
static Step
delete_failed(Archiver *a, int64 job_id, const S3Result *r)
{
	static SPIPlanPtr delete_failed_plan = NULL;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(DELETE_BACKOFF_MAX_S)};

	buildlog_run(buildlog_plan(&delete_failed_plan,
							   "update buildlog.logs set"
							   " archive_delete_attempts = archive_delete_attempts + 1,"
							   " archive_delete_after = now() + make_interval(secs =>"
							   " least(pg_catalog.power(2, least(archive_delete_attempts, 20)), $2))"
							   " where job_id = $1", 2, types),
				 values, NULL, false, SPI_OK_UPDATE);
	buildlog_worker_commit_spi();
	return s3_failed(a, "deleting an archive", r);
}

/*
 * Delete the archive object of one removed log and prove it gone: DELETE,
 * then HEAD must answer 404.  Only then is the deletion recorded.
 */
static Step
delete_one(Archiver *a, const Claim *c)
{
	static SPIPlanPtr deleted_plan = NULL;
	S3Result	result;

	switch (object_owner(c, &result))
	{
		case OBJECT_UNKNOWN:
			pg_atomic_write_u64(&a->stats->in_flight, 0);
			return delete_failed(a, c->job_id, &result);
		case OBJECT_FOREIGN:
			/* not ours to delete: this log has no object of its own */
			foreign_object(a, c, "deleting the archive of", &result);
			update_claimed(&deleted_plan, DELETED_SQL, c->job_id);
			return STEP_DONE;
		default:
			break;
	}
	buildlog_s3_request_delete(&c->target, c->key, &result);
	if (result.outcome == S3_OK || result.outcome == S3_NOT_FOUND)
		buildlog_s3_request_head(&c->target, c->key, &result);
	else
	{
		pg_atomic_write_u64(&a->stats->in_flight, 0);
		return delete_failed(a, c->job_id, &result);
	}
	pg_atomic_write_u64(&a->stats->in_flight, 0);
	if (result.outcome != S3_NOT_FOUND)
	{
		if (result.outcome == S3_OK)
		{
			/* the object outlived its DELETE: not proven, try again later */
			result.outcome = S3_RETRYABLE;
			snprintf(result.error, sizeof(result.error),
					 "the object still exists after DELETE (HEAD answered %ld)",
					 result.status);
		}
		return delete_failed(a, c->job_id, &result);
	}
	update_claimed(&deleted_plan, DELETED_SQL, c->job_id);
	return STEP_DONE;
}

/* The skeleton's step (arg an ArchiveStep): claim a log, then handle it. */
static int
claim_and_handle(BuildlogWorker *w, void *arg)
{
	Archiver   *a = (Archiver *) w;
	ArchiveStep *step = (ArchiveStep *) arg;
	Claim		c;

	if (!claim_log(a, step, &c))
		return STEP_IDLE;
	return step->handle(a, &c);
}

/* Removed logs' objects, oldest removal first, once their back-off is over. */
static ArchiveStep delete_step = {
	"deleting an archive",
	"buildlog archive: deleting the archive of a removed log",
	"select job_id from buildlog.logs"
	" where archive_delete_since is not null"
	" and (archive_delete_after is null"
	" or archive_delete_after <= now())"
	" order by archive_delete_since limit 1"
	" for update skip locked", 0, delete_one
};

/* Logs not archived yet (nor being removed), least recently updated first. */
static ArchiveStep archive_step = {
	"archiving",
	"buildlog archive: uploading a log",
	"select job_id, content from buildlog.logs"
	" where content is not null and archived_at is null"
	" and archive_delete_since is null and job_id <> all ($2)"
	" order by updated_at limit 1"
	" for update skip locked", 2, archive_one
};

/* Archived logs past buildlog.purge_delay ($1), oldest archive first. */
static ArchiveStep verify_step = {
	"verifying",
	"buildlog archive: verifying a log",
	"select job_id, archive_size, archive_sha256, archive_etag"
	" from buildlog.logs"
	" where archived_at is not null and purged_at is null"
	" and content is not null"
	" and archived_at <= now() - make_interval(secs => $1)"
	" order by archived_at limit 1"
	" for update skip locked", 1, verify_one
};

/*
 * Run one step on the skeleton, in a fresh step context: an ERROR rolls
 * back, is counted and logged, and means back off.
 */
static Step
run_step(Archiver *a, ArchiveStep *step)
{
	int			result;

	MemoryContextReset(a->w.step_cxt);
	MemoryContextSwitchTo(a->w.step_cxt);
	result = buildlog_worker_run_step(&a->w, step->what, claim_and_handle, step);
	MemoryContextSwitchTo(a->w.loop_cxt);
	pg_atomic_write_u64(&a->stats->in_flight, 0);	/* the step is over */
	if (result != WORKER_STEP_ERROR)
		return (Step) result;
	pg_atomic_fetch_add_u64(&a->stats->failures, 1);
	buildlog_worker_problem(&a->w, WARNING, a->w.error);
	return STEP_FAILED;
}

/* Is the extension installed, and is S3 configured?  Says so once if not. */
static bool
ready(Archiver *a)
{
	bool		configured = buildlog_s3_endpoint != NULL && *buildlog_s3_endpoint != '\0';
	bool		installed = buildlog_worker_ready(&a->w);

	if (installed && !configured && !a->waiting_for_endpoint)
		ereport(LOG,
				(errmsg("%s: buildlog.s3_endpoint is empty; archiving is off", a->w.name),
				 errhint("Set buildlog.s3_endpoint and the other buildlog.s3_* settings, then reload.")));
	a->waiting_for_endpoint = installed && !configured;
	return installed && configured;
}

void
buildlog_archive_main(Datum arg)
{
	Archiver	a;
	bool		checked = false;	/* extension and endpoint seen since the last idle step */

	memset(&a, 0, sizeof(a));
	memcpy(&a.index, MyBgworkerEntry->bgw_extra, sizeof(int));
	a.stats = &buildlog_shared->archive[a.index];
	pg_atomic_write_u64(&a.stats->in_flight, 0);
	buildlog_worker_start(&a.w, &a.stats->slot, BACKOFF_MIN_MS, BACKOFF_MAX_MS,
						  LOG_REPEAT_SECONDS);

	for (;;)
	{
		Step		deleted;
		Step		archived;
		Step		verified;

		CHECK_FOR_INTERRUPTS();
		if (buildlog_worker_reload(&a.w))
		{
			buildlog_backoff_reset(&a.w.backoff);	/* new settings: try at once */
			a.ndeferred = 0;	/* s3_adopt_objects may be on now */
			checked = false;
		}
		/* a catalog lookup: at start, after a reload, when idle or failing */
		if (!checked && !ready(&a))
		{
			buildlog_worker_wait(5000);
			continue;
		}
		checked = true;
		/* removals first: a removed log's text must leave S3 soonest */
		deleted = run_step(&a, &delete_step);
		archived = run_step(&a, &archive_step);
		verified = archived == STEP_FAILED ? STEP_IDLE : run_step(&a, &verify_step);
		if (archived == STEP_FAILED || verified == STEP_FAILED ||
			(deleted == STEP_FAILED && archived == STEP_IDLE && verified == STEP_IDLE))
		{
			buildlog_worker_wait(buildlog_backoff_next(&a.w.backoff));
			checked = false;
			continue;
		}
		buildlog_backoff_reset(&a.w.backoff);
		if (deleted == STEP_IDLE && archived == STEP_IDLE && verified == STEP_IDLE)
		{
			buildlog_worker_wait(IDLE_WAIT_MS);
			checked = false;
		}
	}
}
