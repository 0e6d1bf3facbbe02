/*-------------------------------------------------------------------------
 * merge.c
 *	  One merge of aggregated content and pending parts, used by every
 *	  reader and by aggregation.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "merge.h"

static int32 buildlog_head_len(const StoredLog *log);

/*
 * Report a logs row whose bookkeeping cannot describe its content (a
 * hand-edited row, typically): an error naming the job and how to repair
 * it, never a read out of bounds.
 */
static void pg_attribute_noreturn() pg_attribute_printf(2, 3)
corrupt(int64 job_id, const char *fmt,...)
{
	char		detail[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("log of job " INT64_FORMAT " has inconsistent part bookkeeping", job_id),
			 errdetail("%s", detail),
			 errhint("The row was probably edited by hand; edit logs with buildlog.redact(). "
					 "To keep the text as it is: SELECT buildlog.set_content(" INT64_FORMAT
					 ", content) FROM buildlog.logs WHERE job_id = " INT64_FORMAT
					 " (discards pending parts and the part numbers).", job_id, job_id)));
}

/* Pointer to the int4 elements of a bookkeeping array, checked. */
static const int32 *
int4_elements(Datum d, bool isnull, int64 job_id, const char *column, int *n)
{
	ArrayType  *arr;

	if (isnull)
		corrupt(job_id, "%s is NULL.", column);
	arr = DatumGetArrayTypeP(d);
	if (ARR_ELEMTYPE(arr) != INT4OID || ARR_NDIM(arr) > 1 || ARR_HASNULL(arr))
		corrupt(job_id, "%s is not a one-dimensional int4 array without NULLs.", column);
	*n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	return (const int32 *) ARR_DATA_PTR(arr);
}

/*
 * Check that the bookkeeping of a stored log describes its content: part
 * numbers strictly ascending and not negative, offsets ascending within the
 * content.  Every use of the offsets goes through buildlog_merge(), which
 * calls this first (a purged log once its text has been restored).
 */
void
buildlog_check_stored(const StoredLog *log)
{
	int32		prev_start = 0;

	if (log->nparts == 0)
		return;
	if (log->content == NULL)
		corrupt(log->job_id, "part_numbers lists %d parts but content is NULL.",
				log->nparts);
	for (int i = 0; i < log->nparts; i++)
	{
		if (log->numbers[i] < 0 || (i > 0 && log->numbers[i] <= log->numbers[i - 1]))
			corrupt(log->job_id, "part_numbers is not strictly ascending from 0 (element %d is %d).",
					i + 1, log->numbers[i]);
		if (log->starts[i] < prev_start || log->starts[i] > log->content_len)
			corrupt(log->job_id, "part_starts element %d is %d; it must lie between %d and the content length %d.",
					i + 1, log->starts[i], prev_start, log->content_len);
		prev_start = log->starts[i];
	}
}

char *
buildlog_stored_log_sql(const char *tail)
{
	Oid			nsp = get_namespace_oid("buildlog", true);
	Oid			logs = OidIsValid(nsp) ? get_relname_relid("logs", nsp) : InvalidOid;
	bool		arrivals = OidIsValid(logs) &&
		get_attnum(logs, "part_arrivals") != InvalidAttrNumber;

	return psprintf("select content, part_numbers, part_starts, final_number, aggregated_at,"
					" purged_at, job_id, %s, updated_at from buildlog.logs%s",
					arrivals ? "part_arrivals" : "null::pg_catalog.timestamptz[]", tail);
}

/* Decode a logs row read with buildlog_stored_log_sql(). */
void
buildlog_stored_log(HeapTuple tuple, TupleDesc desc, StoredLog *log)
{
	bool		isnull;
	Datum		d;
	int			nstarts;

	memset(log, 0, sizeof(*log));
	log->found = true;
	log->final_number = -1;

	d = heap_getattr(tuple, 1, desc, &isnull);
	if (!isnull)
	{
		text	   *t = DatumGetTextPP(d);

		log->content = VARDATA_ANY(t);
		log->content_len = VARSIZE_ANY_EXHDR(t);
	}
	log->job_id = DatumGetInt64(heap_getattr(tuple, 7, desc, &isnull));
	d = heap_getattr(tuple, 2, desc, &isnull);
	log->numbers = int4_elements(d, isnull, log->job_id, "part_numbers", &log->nparts);
	d = heap_getattr(tuple, 3, desc, &isnull);
	log->starts = int4_elements(d, isnull, log->job_id, "part_starts", &nstarts);
	if (nstarts != log->nparts)
		corrupt(log->job_id, "part_numbers has %d elements, part_starts %d.",
				log->nparts, nstarts);
	d = heap_getattr(tuple, 4, desc, &isnull);
	if (!isnull)
		log->final_number = DatumGetInt32(d);
	d = heap_getattr(tuple, 5, desc, &isnull);
	if (!isnull)
		log->aggregated_at = DatumGetTimestampTz(d);
	(void) heap_getattr(tuple, 6, desc, &isnull);
	log->purged = !isnull;
	d = heap_getattr(tuple, 8, desc, &isnull);
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);

		/* informational only (never an offset): one that does not fit is unknown */
		if (ARR_ELEMTYPE(arr) == TIMESTAMPTZOID && ARR_NDIM(arr) <= 1 && !ARR_HASNULL(arr) &&
			ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) == log->nparts)
			log->arrivals = (const TimestampTz *) ARR_DATA_PTR(arr);
	}
	d = heap_getattr(tuple, 9, desc, &isnull);
	if (!isnull)
		log->updated_at = DatumGetTimestampTz(d);
}

/* Decode a log_parts row read with PENDING_PART_COLUMNS. */
void
buildlog_pending_part(HeapTuple tuple, TupleDesc desc, LogPart *part)
{
	bool		isnull;
	text	   *t;

	part->number = DatumGetInt32(heap_getattr(tuple, 1, desc, &isnull));
	t = DatumGetTextPP(heap_getattr(tuple, 2, desc, &isnull));
	part->data = VARDATA_ANY(t);
	part->len = VARSIZE_ANY_EXHDR(t);
	part->final = DatumGetBool(heap_getattr(tuple, 3, desc, &isnull));
	part->created_at = DatumGetTimestampTz(heap_getattr(tuple, 4, desc, &isnull));
	part->pending = true;
}

/* Order: number, then oldest copy first, then bytes (deterministic). */
static int
cmp_parts(const void *a, const void *b)
{
	const LogPart *x = a;
	const LogPart *y = b;
	int			c;

	if (x->number != y->number)
		return (x->number > y->number) - (x->number < y->number);
	if (x->created_at != y->created_at)
		return (x->created_at > y->created_at) - (x->created_at < y->created_at);
	c = memcmp(x->data, y->data, Min(x->len, y->len));
	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* Sort pending parts by number and keep one copy per number. */
int
buildlog_dedupe_pending(LogPart *parts, int n)
{
	int			m = 0;
	int			i;

	if (n > 1)
		qsort(parts, n, sizeof(LogPart), cmp_parts);
	for (i = 0; i < n; i++)
	{
		if (m > 0 && parts[m - 1].number == parts[i].number)
		{
			/* a final flag on any copy marks the part final */
			parts[m - 1].final |= parts[i].final;
			continue;
		}
		parts[m++] = parts[i];
	}
	return m;
}

/* Length of the head: content bytes before the first numbered part. */
static int32
buildlog_head_len(const StoredLog *log)
{
	return log->nparts > 0 ? log->starts[0] : log->content_len;
}

/*
 * The head as readers of parts see it: part HEAD_NUMBER, read only from the
 * start (after < 0) and only when it holds text; final when none of the
 * log's numbered parts (nfollowing, stored or pending) follows it.  Its
 * time is when the text was set, never after the first part's.
 */
bool
buildlog_head_part(const StoredLog *log, int32 after, int nfollowing, LogPart *head)
{
	int32		len = log->content ? buildlog_head_len(log) : 0;

	if (after >= 0 || len == 0)
		return false;
	head->number = HEAD_NUMBER;
	head->final = (nfollowing == 0);
	head->pending = false;
	head->created_at = log->updated_at;
	if (log->nparts > 0 && log->arrivals && log->arrivals[0] < head->created_at)
		head->created_at = log->arrivals[0];
	head->data = log->content;
	head->len = len;
	return true;
}

/* The i-th merged part of a stored log as a LogPart. */
static LogPart
stored_part(const StoredLog *log, int i)
{
	LogPart		p;
	int32		end = (i + 1 < log->nparts) ? log->starts[i + 1] : log->content_len;

	p.number = log->numbers[i];
	p.final = (p.number == log->final_number);
	p.pending = false;
	p.created_at = log->arrivals ? log->arrivals[i] : log->aggregated_at;
	p.data = log->content + log->starts[i];
	p.len = end - log->starts[i];
	return p;
}

/* Index of the first stored part numbered above "after" (binary search). */
int
buildlog_first_part_after(const StoredLog *log, int32 after)
{
	int			lo = 0;
	int			hi = log->nparts;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (log->numbers[mid] <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Merge stored parts and deduplicated pending parts into one sequence in
 * number order, one part per number (a merged part wins over a pending
 * copy).  Only parts numbered above "after" are returned; *merged counts
 * the pending parts that are new to the log.
 */
int
buildlog_merge(const StoredLog *log, const LogPart *pending, int npending,
			   int32 after, LogPart **out, int *merged)
{
	LogPart    *seq = palloc(sizeof(LogPart) * Max(log->nparts + npending, 1));
	int			i = 0;
	int			j = 0;
	int			n = 0;

	buildlog_check_stored(log);
	i = buildlog_first_part_after(log, after);
	while (j < npending && pending[j].number <= after)
		j++;

	*merged = 0;
	while (i < log->nparts || j < npending)
	{
		if (j >= npending ||
			(i < log->nparts && log->numbers[i] <= pending[j].number))
		{
			if (j < npending && log->numbers[i] == pending[j].number)
				j++;			/* duplicate of a merged part */
			seq[n++] = stored_part(log, i++);
		}
		else
		{
			seq[n++] = pending[j++];
			(*merged)++;
		}
	}
	*out = seq;
	return n;
}

/*
 * How many deduplicated pending parts are new to the log: its bookkeeping
 * alone answers, so a purged log is restored only when something merges.
 */
int
buildlog_count_new(const StoredLog *log, const LogPart *pending, int npending)
{
	int			i = 0;
	int			fresh = 0;

	for (int j = 0; j < npending; j++)
	{
		while (i < log->nparts && log->numbers[i] < pending[j].number)
			i++;
		if (i >= log->nparts || log->numbers[i] != pending[j].number)
			fresh++;
	}
	return fresh;
}

/* Concatenate head and sequence into a text, with new bookkeeping. */
AssembledLog
buildlog_assemble(const StoredLog *log, const LogPart *seq, int n)
{
	AssembledLog result;
	int32		head = buildlog_head_len(log);
	int64		total = head;
	Datum	   *numbers = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *starts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *arrivals = palloc(sizeof(Datum) * Max(n, 1));
	char	   *p;
	int			i;

	for (i = 0; i < n; i++)
		total += seq[i].len;
	if (total > (int64) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("log would exceed the maximum size of a text value"),
				 errdetail("The assembled log has " INT64_FORMAT " bytes.", total)));

	result.content = (text *) palloc(total + VARHDRSZ);
	SET_VARSIZE(result.content, total + VARHDRSZ);
	p = VARDATA(result.content);
	if (head > 0)
		memcpy(p, log->content, head);
	p += head;
	result.final_number = -1;
	for (i = 0; i < n; i++)
	{
		numbers[i] = Int32GetDatum(seq[i].number);
		starts[i] = Int32GetDatum((int32) (p - VARDATA(result.content)));
		arrivals[i] = TimestampTzGetDatum(seq[i].created_at);
		memcpy(p, seq[i].data, seq[i].len);
		p += seq[i].len;
		if (seq[i].final)
			result.final_number = seq[i].number;
	}
	result.numbers = construct_array(numbers, n, INT4OID, 4, true, TYPALIGN_INT);
	result.starts = construct_array(starts, n, INT4OID, 4, true, TYPALIGN_INT);
	result.arrivals = construct_array(arrivals, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL,
									  TYPALIGN_DOUBLE);
	return result;
}
