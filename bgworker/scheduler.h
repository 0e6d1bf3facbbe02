/*-------------------------------------------------------------------------
 * scheduler.h
 *	  The scheduler worker: aggregation of due jobs and partition maintenance.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SCHEDULER_H
#define BUILDLOG_SCHEDULER_H

#include "postgres.h"

extern void buildlog_scheduler_register(void);
extern PGDLLEXPORT void buildlog_scheduler_main(Datum arg);

#endif							/* BUILDLOG_SCHEDULER_H */
