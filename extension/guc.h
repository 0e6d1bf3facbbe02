/*-------------------------------------------------------------------------
 * guc.h
 *	  buildlog.* settings shared by SQL functions and workers.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_GUC_H
#define BUILDLOG_GUC_H

extern int	buildlog_aggregate_delay_ms;
extern int	buildlog_aggregate_force_after_s;
extern int	buildlog_maintenance_lock_timeout_ms;
extern int	buildlog_max_part_bytes;

extern void buildlog_define_gucs(void);

#endif							/* BUILDLOG_GUC_H */
