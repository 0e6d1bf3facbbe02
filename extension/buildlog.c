/*-------------------------------------------------------------------------
 * buildlog.c
 *	  Module entry point: settings, shared memory and background workers.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "../bgworker/archive.h"
#include "../bgworker/drain.h"
#include "../bgworker/scheduler.h"
#include "../bgworker/shmem.h"
#include "../bgworker/worker.h"
#include "guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Say clearly when max_worker_processes cannot hold every buildlog worker
 * (a worker without a slot silently never starts).  Returns the free slots.
 */
static int
check_worker_slots(void)
{
	int			free_slots = buildlog_worker_slots_free();
	int			want = 1 + buildlog_drain_workers + buildlog_archive_workers;

	if (want > free_slots)
	{
		int			left = Max(free_slots - 1, 0);
		int			drains = Min(buildlog_drain_workers, left);
		int			archives = Min(buildlog_archive_workers, left - drains);

		ereport(WARNING,
				(errmsg("buildlog needs %d background worker slots (1 scheduler, %d drain, %d archive), but max_worker_processes = %d leaves %d",
						want, buildlog_drain_workers, buildlog_archive_workers,
						max_worker_processes, Max(free_slots, 0)),
				 errdetail("Starting %s, %d of %d drain workers and %d of %d archive workers.",
						   free_slots > 0 ? "the scheduler" : "no scheduler",
						   drains, buildlog_drain_workers,
						   archives, buildlog_archive_workers),
				 errhint("Raise max_worker_processes to at least %d (plus what parallel query and other extensions need) and restart, or lower buildlog.drain_workers or buildlog.archive_workers.",
						 max_worker_processes - free_slots + want)));
	}
	return free_slots;
}

/* Called once per process that loads buildlog.so. */
void
_PG_init(void)
{
	int			free_slots;

	buildlog_define_gucs();

	/* workers and shared memory only when preloaded, never in pg_upgrade */
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	buildlog_shmem_init_hooks();
	free_slots = check_worker_slots();
	/* the scheduler first: without it nothing is aggregated or maintained */
	buildlog_scheduler_register();
	buildlog_drain_register(free_slots - 1);
	/* those beyond the slots are refused ("too many background workers") */
	buildlog_archive_register();
}
