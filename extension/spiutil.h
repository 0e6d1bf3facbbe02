/*-------------------------------------------------------------------------
 * spiutil.h
 *	  Kept SPI plans for the fixed statements of buildlog's functions.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SPIUTIL_H
#define BUILDLOG_SPIUTIL_H

#include "postgres.h"

#include "executor/spi.h"

/* Prepare sql once per backend into *slot and return the kept plan. */
extern SPIPlanPtr buildlog_plan(SPIPlanPtr *slot, const char *sql,
								int nargs, Oid *argtypes);

/* Run a kept plan and insist on the expected SPI result code. */
extern void buildlog_run(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, int expected);

/*
 * Run the kept plan of sql, whose one parameter $1 is an int8 (a job's or a
 * row's id): the most common statement shape.  sql may be NULL once *slot
 * holds the plan.
 */
extern void buildlog_run_by_id(SPIPlanPtr *slot, const char *sql, int64 id,
							   bool read_only, int expected);

#endif							/* BUILDLOG_SPIUTIL_H */
