/*-------------------------------------------------------------------------
 * buildlog.c
 *	  Module entry point: settings, shared memory and background workers
 *	  (registered through bgworker/register.h, the one call into bgworker/).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "bgworker/register.h"
#include "guc.h"
#include "shmem.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Called once per process that loads buildlog.so. */
void
_PG_init(void)
{
	buildlog_define_gucs();

	/* workers and shared memory only when preloaded, never in pg_upgrade */
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	buildlog_shmem_init_hooks();
	buildlog_register_workers();
}
