/*-------------------------------------------------------------------------
 * joblock.c
 *	  Per-job advisory locks in a key space of buildlog's own.
 *
 * The locks are advisory locks whose fourth tag field is buildlog's own
 * value, so they never collide with an application's pg_advisory_lock()
 * keys.  They show in pg_locks as locktype 'advisory', objsubid 0x424c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"

#include "joblock.h"

/* The advisory lock tag of a job in this database, of one kind (field4). */
void
buildlog_job_locktag(LOCKTAG *tag, int64 job_id, uint16 kind)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId,
						 (uint32) ((uint64) job_id >> 32),
						 (uint32) job_id,
						 kind);
}

/* Shared locks for a writer; ids sorted so lockers never deadlock. */
void
buildlog_lock_jobs_shared(const int64 *sorted_job_ids, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		LOCKTAG		tag;

		buildlog_job_locktag(&tag, sorted_job_ids[i], BUILDLOG_LOCK_JOB);
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
}

/* Exclusive lock for aggregation and content replacement of one job. */
void
buildlog_lock_job_exclusive(int64 job_id)
{
	LOCKTAG		tag;

	buildlog_job_locktag(&tag, job_id, BUILDLOG_LOCK_JOB);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
