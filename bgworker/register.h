/*-------------------------------------------------------------------------
 * register.h
 *	  The one call from the library into bgworker/: _PG_init registers the
 *	  workers through it (the layering rule in the README).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_REGISTER_H
#define BUILDLOG_REGISTER_H

/*
 * Register the scheduler, the drain and the archive workers, warning when
 * max_worker_processes cannot hold them all.  Only from _PG_init while
 * shared_preload_libraries is processed.
 */
extern void buildlog_register_workers(void);

#endif							/* BUILDLOG_REGISTER_H */
