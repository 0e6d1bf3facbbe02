/*-------------------------------------------------------------------------
 * restore.c
 *	  Bringing a purged log's content back from its S3 archive.
 *
 * The read path (log(), parts(), fetch()) and aggregate() use it: readers
 * see a purged log as if it were still in the database, and a late part of
 * a purged log is merged into the full log, never into a fragment.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "guc.h"
#include "restore.h"
#include "s3client.h"
#include "spiutil.h"

static SPIPlanPtr facts_plan = NULL;

/* The sink of the download: append to a StringInfo (may ERROR above 1 GB). */
static void
append_slice(void *arg, const char *data, Size len)
{
	appendBinaryStringInfo((StringInfo) arg, data, (int) len);
}

void
buildlog_restore_purged(int64 job_id, StoredLog *log)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	char	   *sha256;
	char	   *key;
	S3Target	target;
	S3Sink		sink;
	S3Result	result;
	StringInfoData buf;

	buildlog_run(buildlog_plan(&facts_plan,
							   "select archive_sha256 from buildlog.logs where job_id = $1",
							   1, types),
				 values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0 ||
		(sha256 = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1,
													&isnull)), isnull))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("log of job " INT64_FORMAT " was purged but has no archive checksum", job_id)));
	buildlog_s3_target(&target);
	key = buildlog_s3_key_for_job(buildlog_s3_prefix, job_id);
	initStringInfo(&buf);
	sink.write = append_slice;
	sink.arg = &buf;
	buildlog_s3_get(&target, key, true, &sink, &result);
	if (result.outcome != S3_OK)
		buildlog_s3_report(ERROR, "read", key, &result);
	if (strcmp(result.received.sha256, sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the archive of job " INT64_FORMAT " does not match the checksum recorded at upload", job_id),
				 errdetail("Object %s has SHA-256 %s, expected %s.", key,
						   result.received.sha256, sha256),
				 errhint("The object was changed or replaced on the S3 server; restore it from a backup, or clear the log with buildlog.set_content().")));
	log->content = buf.data;
	log->content_len = buf.len;
	log->purged = false;
}
