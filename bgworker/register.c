/*-------------------------------------------------------------------------
 * register.c
 *	  Registration of every buildlog worker, in the order that matters when
 *	  slots are short: the scheduler first, then drains, then archives.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "archive.h"
#include "drain.h"
#include "guc.h"
#include "http/http.h"
#include "register.h"
#include "scheduler.h"
#include "worker.h"

/*
 * Say clearly when max_worker_processes cannot hold every buildlog worker
 * (a worker without a slot silently never starts).  Returns the free slots.
 */
static int
check_worker_slots(void)
{
	int			free_slots = buildlog_worker_slots_free();
	int			http = buildlog_http_enabled() ? 1 + buildlog_http_readers : 0;
	int			want = 1 + buildlog_drain_workers + buildlog_archive_workers + http;

	if (want > free_slots)
	{
		int			left = Max(free_slots - 1, 0);
		int			drains = Min(buildlog_drain_workers, left);
		int			archives = Min(buildlog_archive_workers, left - drains);
		int			https = Min(http, left - drains - archives);

		ereport(WARNING,
				(errmsg("buildlog needs %d background worker slots (1 scheduler, %d drain, %d archive%s), but max_worker_processes = %d leaves %d",
						want, buildlog_drain_workers, buildlog_archive_workers,
						http ? psprintf(", 1 http, %d http reader", buildlog_http_readers) : "",
						max_worker_processes, Max(free_slots, 0)),
				 http ?
				 errdetail("Starting %s, %d of %d drain workers, %d of %d archive workers and %d of %d HTTP workers (the service and its readers).",
						   free_slots > 0 ? "the scheduler" : "no scheduler",
						   drains, buildlog_drain_workers,
						   archives, buildlog_archive_workers, https, http) :
				 errdetail("Starting %s, %d of %d drain workers and %d of %d archive workers.",
						   free_slots > 0 ? "the scheduler" : "no scheduler",
						   drains, buildlog_drain_workers,
						   archives, buildlog_archive_workers),
				 errhint("Raise max_worker_processes to at least %d (plus what parallel query and other extensions need) and restart, or lower buildlog.drain_workers, buildlog.archive_workers or buildlog.http_readers (buildlog.http_listen = '' turns the HTTP service off).",
						 max_worker_processes - free_slots + want)));
	}
	return free_slots;
}

void
buildlog_register_workers(void)
{
	int			free_slots = check_worker_slots();

	/* the scheduler first: without it nothing is aggregated or maintained */
	buildlog_scheduler_register();
	buildlog_drain_register(free_slots - 1);
	/* those beyond the slots are refused ("too many background workers") */
	buildlog_archive_register();
	buildlog_http_register();
}
