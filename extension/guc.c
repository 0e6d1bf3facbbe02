/*-------------------------------------------------------------------------
 * guc.c
 *	  Definitions of the buildlog.* configuration parameters.
 *
 * Time settings carry units so SQL can read them with
 * current_setting(...)::interval.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "guc.h"

int			buildlog_aggregate_delay_ms = 10 * 1000;
int			buildlog_aggregate_force_after_s = 3 * 3600;
int			buildlog_maintenance_lock_timeout_ms = 100;
int			buildlog_max_part_bytes = 1024 * 1024;

/* Define every setting once, when the library is loaded. */
void
buildlog_define_gucs(void)
{
	DefineCustomIntVariable("buildlog.aggregate_delay",
							"Time after a job's final part before its log is aggregated.",
							NULL,
							&buildlog_aggregate_delay_ms,
							10 * 1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.aggregate_force_after",
							"Time after a job's newest part after which its log is aggregated even without a final part.",
							NULL,
							&buildlog_aggregate_force_after_s,
							3 * 3600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.maintenance_lock_timeout",
							"Longest time partition maintenance may queue for a lock on log_parts before it backs off.",
							"Writers queued behind maintenance wait at most this long.",
							&buildlog_maintenance_lock_timeout_ms,
							100, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.max_part_bytes",
							"Largest log part accepted by ingestion, in bytes after UTF-8 cleaning.",
							NULL,
							&buildlog_max_part_bytes,
							1024 * 1024, 1, MaxAllocSize / 4,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("buildlog");
}
