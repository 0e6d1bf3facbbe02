/*-------------------------------------------------------------------------
 * ingest.h
 *	  The one ingest path: a batch of parts into buildlog.log_parts.
 *
 * write_parts() and (later) the drain workers and HTTP ingest all call
 * buildlog_ingest() with four parallel arrays.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_INGEST_H
#define BUILDLOG_INGEST_H

#include "postgres.h"

#include "utils/array.h"

#include "wire.h"				/* BUILDLOG_LAST_NUMBER */

/* What one batch wrote. */
typedef struct IngestResult
{
	int64		parts;
	int64		bytes;
} IngestResult;

/*
 * Validate and write one batch: job_ids int8[], numbers int4[], contents
 * text[] (valid UTF-8), finals bool[].  Raises a descriptive ERROR on bad
 * input.  Must run inside a transaction; connects to SPI itself.
 */
extern IngestResult buildlog_ingest(ArrayType *job_ids, ArrayType *numbers,
									ArrayType *contents, ArrayType *finals);

#endif							/* BUILDLOG_INGEST_H */
