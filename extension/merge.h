/*-------------------------------------------------------------------------
 * merge.h
 *	  Merging a log's aggregated content with its pending parts.
 *
 * A logs row keeps, beside its content, the number and start offset of
 * every part merged into it (part_numbers, part_starts).  Bytes before the
 * first part are a "head" set by set_content().  With that bookkeeping a
 * late part is placed at its numbered position, and a duplicate of a merged
 * part is recognised and dropped.  aggregate(), log() and parts() all use
 * this one merge, so every reader sees what aggregation will produce.
 *
 * Readers of parts see a non-empty head as one part numbered HEAD_NUMBER
 * (-1), before part 0, read only from the start (after = -1); it is final
 * when no numbered part follows it: a log set whole is complete.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_MERGE_H
#define BUILDLOG_MERGE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"

/* One part, pending in log_parts or sliced out of logs.content. */
typedef struct LogPart
{
	int32		number;
	bool		final;
	bool		pending;
	TimestampTz created_at;
	const char *data;
	int32		len;
} LogPart;

/* A logs row as the merge needs it. */
typedef struct StoredLog
{
	int64		job_id;			/* for error messages */
	bool		found;
	bool		purged;
	const char *content;		/* NULL when the row has none */
	int32		content_len;
	int			nparts;
	const int32 *numbers;
	const int32 *starts;
	const TimestampTz *arrivals;	/* when each merged part arrived; NULL
									 * when unknown (merged before 0.3.0):
									 * aggregated_at stands in */
	int32		final_number;	/* -1 when no final part was merged */
	TimestampTz aggregated_at;
	TimestampTz updated_at;		/* when the row last changed (the head's time) */
} StoredLog;

/* The number under which readers of parts see a log's head. */
#define HEAD_NUMBER (-1)

/* A merged log ready to be stored or returned. */
typedef struct AssembledLog
{
	text	   *content;
	ArrayType  *numbers;
	ArrayType  *starts;
	ArrayType  *arrivals;		/* each part's arrival time */
	int32		final_number;
} AssembledLog;

/*
 * "select <the columns buildlog_stored_log() reads> from buildlog.logs" and
 * then tail (e.g. " where job_id = $1"), palloc'd.  part_arrivals is read
 * only once the schema has it: between a new library and ALTER EXTENSION
 * UPDATE the readers keep working (arrival times then unknown).
 */
extern char *buildlog_stored_log_sql(const char *tail);
/*
 * The archive facts every change of a log's content resets, so the archive
 * workers upload it again (a SET list for an UPDATE of buildlog.logs).
 */
#define ARCHIVE_RESET_SQL \
	"archived_at = null, archive_size = null, archive_sha256 = null," \
	" archive_etag = null, archive_gzip = null, verified_at = null," \
	" purged_at = null"

/* Columns, in this order, that buildlog_pending_part() reads. */
#define PENDING_PART_COLUMNS "number, content, final, created_at"

extern void buildlog_stored_log(HeapTuple tuple, TupleDesc desc,
								StoredLog *log);
extern void buildlog_pending_part(HeapTuple tuple, TupleDesc desc,
								  LogPart *part);
extern void buildlog_check_stored(const StoredLog *log);
extern void buildlog_lock_stored_log(int64 job_id, StoredLog *log);
extern int	buildlog_first_part_after(const StoredLog *log, int32 after);
extern int	buildlog_dedupe_pending(LogPart *parts, int n);
extern int	buildlog_merge(const StoredLog *log, const LogPart *pending,
						   int npending, int32 after, LogPart **out,
						   int *merged);
extern int	buildlog_count_new(const StoredLog *log, const LogPart *pending,
							   int npending);
extern bool buildlog_head_part(const StoredLog *log, int32 after, int nfollowing,
							   LogPart *head);
extern AssembledLog buildlog_assemble(const StoredLog *log,
									  const LogPart *seq, int n);

#endif							/* BUILDLOG_MERGE_H */
