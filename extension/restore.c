/*-------------------------------------------------------------------------
 * restore.c
 *	  Bringing a purged log's content back from its S3 archive.
 *
 * The read path (log(), parts(), fetch()) and aggregate() use it: readers
 * see a purged log as if it were still in the database, and a late part of
 * a purged log is merged into the full log, never into a fragment.
 * aggregate() downloads before it takes the job's lock (S3 waits stay off
 * the writers' path) and then checks the archive is still the one it
 * downloaded.  parts(job, after) of an uncompressed archive reads only the
 * bytes of the parts it returns (S3 Range), checked against the recorded
 * size, ETag and part offsets; a gzip archive is read whole.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "guc.h"
#include "restore.h"
#include "s3.h"
#include "spiutil.h"

static SPIPlanPtr facts_plan = NULL;

/* The sink of the download: append to a StringInfo (may ERROR above 1 GB). */
static void
append_slice(void *arg, const char *data, Size len)
{
	appendBinaryStringInfo((StringInfo) arg, data, (int) len);
}

/* ERROR: the archive of a purged log cannot be trusted. */
static void
corrupt_archive(int64 job_id, const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the archive of job " INT64_FORMAT " does not match what was recorded at upload", job_id),
			 errdetail("Object %s: %s", key, detail),
			 errhint("The object was changed or replaced on the S3 server; restore it from a backup, or clear the log with buildlog.set_content().")));
}

/* Copy a text column of the first SPI row into out ("" when NULL). */
static bool
row_text(int col, char *out, Size outlen)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	out[0] = '\0';
	if (!isnull)
		strlcpy(out, TextDatumGetCString(d), outlen);
	return !isnull;
}

void
buildlog_archive_facts(int64 job_id, ArchiveFacts *facts)
{
	bool		isnull;
	Datum		d;

	buildlog_run_by_id(&facts_plan,
					   "select archive_sha256, archive_etag, archive_size, archive_gzip"
					   " from buildlog.logs where job_id = $1",
					   job_id, true, SPI_OK_SELECT);
	if (SPI_processed == 0 || !row_text(1, facts->sha256, sizeof(facts->sha256)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("log of job " INT64_FORMAT " was purged but has no archive checksum", job_id)));
	row_text(2, facts->etag, sizeof(facts->etag));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	facts->size = isnull ? -1 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	facts->gzip = isnull ? -1 : (DatumGetBool(d) ? 1 : 0);
}

void
buildlog_restore_download(int64 job_id, RestoredLog *restored)
{
	ArchiveFacts facts;
	char	   *key;
	S3Target	target;
	S3Sink		sink;
	S3Result	result;
	StringInfoData buf;

	buildlog_archive_facts(job_id, &facts);
	buildlog_s3_target(&target);
	key = buildlog_s3_key_for_job(buildlog_s3_prefix, job_id);
	initStringInfo(&buf);
	sink.write = append_slice;
	sink.arg = &buf;
	buildlog_s3_request_get(&target, key, true, &sink, &result);
	if (result.outcome != S3_OK)
		buildlog_s3_report(ERROR, "read", key, &result);
	if (strcmp(result.received.sha256, facts.sha256) != 0)
		corrupt_archive(job_id, key,
						psprintf("SHA-256 %s, expected %s.", result.received.sha256,
								 facts.sha256));
	restored->data = buf.data;
	restored->len = buf.len;
	strlcpy(restored->sha256, facts.sha256, sizeof(restored->sha256));
}

/* ERROR unless the part offsets fit the content they slice. */
static void
check_offsets(int64 job_id, const StoredLog *log, int first, int64 len)
{
	for (int i = first; i < log->nparts; i++)
		if (log->starts[i] < 0 || log->starts[i] > len ||
			(i > first && log->starts[i] < log->starts[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("part bookkeeping of job " INT64_FORMAT " does not fit its archive", job_id),
					 errdetail("Part %d (number %d) starts at byte %d of a log of " INT64_FORMAT " bytes.",
							   i, log->numbers[i], log->starts[i], len),
					 errhint("Clear or replace the log with buildlog.set_content().")));
}

void
buildlog_restore_apply(int64 job_id, StoredLog *log, const RestoredLog *restored)
{
	check_offsets(job_id, log, 0, restored->len);
	log->content = restored->data;
	log->content_len = restored->len;
	log->purged = false;
}

void
buildlog_restore_purged(int64 job_id, StoredLog *log)
{
	RestoredLog restored;

	buildlog_restore_download(job_id, &restored);
	buildlog_restore_apply(job_id, log, &restored);
}

bool
buildlog_restore_range(int64 job_id, StoredLog *log, int32 after)
{
	ArchiveFacts facts;
	int			first;
	int64		start;
	int64		want;
	char	   *key;
	S3Target	target;
	S3Sink		sink;
	S3Result	result;
	StringInfoData buf;
	int32	   *starts;
	int			n;

	if (after < 0)
		return false;			/* from the start, head included: the whole object */
	buildlog_archive_facts(job_id, &facts);
	if (facts.gzip != 0 || facts.size < 0)
		return false;			/* gzip or unknown: the whole object */
	first = buildlog_first_part_after(log, after);
	n = log->nparts - first;
	check_offsets(job_id, log, first, facts.size);
	log->purged = false;
	if (n == 0)
	{
		/* nothing stored above "after": no request at all */
		log->nparts = 0;
		log->content = "";
		log->content_len = 0;
		return true;
	}
	start = log->starts[first];
	want = facts.size - start;
	initStringInfo(&buf);
	if (want > 0)
	{
		buildlog_s3_target(&target);
		key = buildlog_s3_key_for_job(buildlog_s3_prefix, job_id);
		sink.write = append_slice;
		sink.arg = &buf;
		buildlog_s3_request_get_range(&target, key, start, facts.size - 1, &sink, &result);
		if (result.outcome != S3_OK)
			buildlog_s3_report(ERROR, "read", key, &result);
		/* trust nothing the response does not prove */
		if (result.status != 206)
			corrupt_archive(job_id, key,
							psprintf("a range request was answered with HTTP %ld, not 206.",
									 result.status));
		if (result.range_total != facts.size)
			corrupt_archive(job_id, key,
							psprintf("Content-Range total is " INT64_FORMAT ", the recorded size " INT64_FORMAT ".",
									 result.range_total, facts.size));
		if (result.range_first != start || result.range_last != facts.size - 1 ||
			result.received.size != (uint64) want || buf.len != want)
			corrupt_archive(job_id, key,
							psprintf("asked for bytes " INT64_FORMAT "-" INT64_FORMAT ", got " INT64_FORMAT "-" INT64_FORMAT " (" UINT64_FORMAT " bytes).",
									 start, facts.size - 1, result.range_first,
									 result.range_last, result.received.size));
		if (result.content_encoding[0] != '\0' &&
			pg_strcasecmp(result.content_encoding, "identity") != 0)
			corrupt_archive(job_id, key,
							psprintf("an uncompressed archive came with Content-Encoding %s.",
									 result.content_encoding));
		if (facts.etag[0] != '\0' && strcmp(result.etag, facts.etag) != 0)
			corrupt_archive(job_id, key,
							psprintf("ETag %s, recorded %s.", result.etag, facts.etag));
		if (!pg_verifymbstr(buf.data, buf.len, true))
			corrupt_archive(job_id, key, "the bytes read are not valid UTF-8.");
	}
	/* a log of just the parts read: offsets relative to the range */
	starts = palloc(sizeof(int32) * n);
	for (int i = 0; i < n; i++)
		starts[i] = (int32) (log->starts[first + i] - start);
	log->numbers = log->numbers + first;
	if (log->arrivals)
		log->arrivals = log->arrivals + first;
	log->starts = starts;
	log->nparts = n;
	log->content = buf.data;
	log->content_len = buf.len;
	return true;
}
