/*-------------------------------------------------------------------------
 * drain.h
 *	  Drain workers: RabbitMQ log part deliveries into buildlog.log_parts.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_DRAIN_H
#define BUILDLOG_DRAIN_H

#include "postgres.h"

extern void buildlog_drain_register(int slots);
extern PGDLLEXPORT void buildlog_drain_main(Datum arg);

#endif							/* BUILDLOG_DRAIN_H */
