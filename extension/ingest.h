/*-------------------------------------------------------------------------
 * ingest.h
 *	  The one ingest path: a batch of parts into buildlog.log_parts.
 *
 * write_parts(), the drain workers, replay_rejected() and every HTTP
 * upload write through buildlog_ingest(); the C callers gather their parts
 * in a PartBatch and hand it to buildlog_ingest_batch().
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
 * A batch of parts in the order they are written: four parallel arrays of
 * Datums (int8 job ids, int4 numbers, text contents, bool finals), grown in
 * the memory context that was current at buildlog_batch_init().  The
 * contents are not copied.
 */
typedef struct PartBatch
{
	int			n;
	int			cap;
	Datum	   *jobs;
	Datum	   *numbers;
	Datum	   *contents;
	Datum	   *finals;
	int64		bytes;			/* content bytes */
} PartBatch;

/* An empty batch with room for cap parts, in CurrentMemoryContext. */
extern void buildlog_batch_init(PartBatch *b, int cap);

/* Add one part (content: a text Datum, kept by reference). */
extern void buildlog_batch_add(PartBatch *b, int64 job_id, int32 number, Datum content,
							   bool final);

/* Add every part of from, in order. */
extern void buildlog_batch_append(PartBatch *b, const PartBatch *from);

/* Write a batch through buildlog_ingest() (nothing when empty). */
extern IngestResult buildlog_ingest_batch(const PartBatch *b);

/*
 * Validate and write one batch: job_ids int8[], numbers int4[], contents
 * text[] (valid UTF-8), finals bool[].  Raises a descriptive ERROR on bad
 * input.  Must run inside a transaction; connects to SPI itself.
 */
extern IngestResult buildlog_ingest(ArrayType *job_ids, ArrayType *numbers,
									ArrayType *contents, ArrayType *finals);

#endif							/* BUILDLOG_INGEST_H */
