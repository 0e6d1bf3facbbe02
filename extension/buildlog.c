/*-------------------------------------------------------------------------
 * buildlog.c
 *	  Module entry point: settings now, background workers later.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Called once per process that loads buildlog.so. */
void
_PG_init(void)
{
	buildlog_define_gucs();
}
