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

#endif							/* BUILDLOG_SPIUTIL_H */
