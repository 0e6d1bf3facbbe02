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

#define BUILDLOG_LOCK_FIELD4	0x424c	/* "BL" */

/* Build the lock tag of one job in this database. */
static void
job_locktag(LOCKTAG *tag, int64 job_id)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId,
						 (uint32) ((uint64) job_id >> 32),
						 (uint32) job_id,
						 BUILDLOG_LOCK_FIELD4);
}

/* Shared locks for a writer; ids sorted so lockers never deadlock. */
void
buildlog_lock_jobs_shared(const int64 *sorted_job_ids, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		LOCKTAG		tag;

		job_locktag(&tag, sorted_job_ids[i]);
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
}

/* Exclusive lock for aggregation and content replacement of one job. */
void
buildlog_lock_job_exclusive(int64 job_id)
{
	LOCKTAG		tag;

	job_locktag(&tag, job_id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
