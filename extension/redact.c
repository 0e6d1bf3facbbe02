/*-------------------------------------------------------------------------
 * redact.c
 *	  redact(job_id, pattern, replacement, flags): the supported way to edit
 *	  a stored log (a leaked secret, typically), keeping its part bookkeeping
 *	  and its archive consistent.
 *
 * An UPDATE of logs.content leaves part_starts pointing into text that is no
 * longer there.  redact() instead merges the pending parts first (the same
 * aggregate() every path uses), restores a purged log from its archive, then
 * rewrites the head and every merged part on its own with regexp_replace()
 * and recomputes the offsets from the new lengths.  The archive facts are
 * reset, so the archive workers upload the redacted log over the old object
 * (same key), verify it and purge it again.  A match that would span two
 * parts cannot be rewritten part by part: redact() then refuses with an
 * error and changes nothing.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "merge.h"
#include "restore.h"
#include "spiutil.h"

PG_FUNCTION_INFO_V1(buildlog_redact);

static SPIPlanPtr aggregate_plan = NULL;
static SPIPlanPtr store_plan = NULL;

/* regexp_replace(slice, pattern, replacement, flags) as a text value. */
static text *
replace_slice(const char *data, int32 len, text *pattern, text *replacement,
			  text *flags)
{
	text	   *slice = cstring_to_text_with_len(data, len);

	return DatumGetTextPP(DirectFunctionCall4Coll(textregexreplace,
												  DEFAULT_COLLATION_OID,
												  PointerGetDatum(slice),
												  PointerGetDatum(pattern),
												  PointerGetDatum(replacement),
												  PointerGetDatum(flags)));
}

/* Does pattern (with flags, 'g' aside) still match text t? */
static bool
still_matches(text *t, text *pattern, text *flags)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *f = text_to_cstring(flags);
	char	   *o = f;
	bool		isnull;

	/* regexp_like() refuses the global flag, which means nothing for it */
	for (char *c = f; *c; c++)
		if (*c != 'g')
			*o++ = *c;
	*o = '\0';
	values[0] = PointerGetDatum(t);
	values[1] = PointerGetDatum(pattern);
	values[2] = CStringGetTextDatum(f);
	if (SPI_execute_with_args("select pg_catalog.regexp_like($1, $2, $3)", 3,
							  types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "regexp_like check failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Rewrite the head and each merged part; returns how many changed and the
 * new content and offsets in *content / *starts.
 */
static int
rewrite_parts(const StoredLog *log, text *pattern, text *replacement,
			  text *flags, text **content, ArrayType **starts)
{
	int32		head = log->nparts > 0 ? log->starts[0] : log->content_len;
	text	  **slices = palloc(sizeof(text *) * (log->nparts + 1));
	Datum	   *offsets = palloc(sizeof(Datum) * Max(log->nparts, 1));
	int64		total = 0;
	int			changed = 0;
	char	   *p;

	for (int i = 0; i <= log->nparts; i++)
	{
		int32		from = i == 0 ? 0 : log->starts[i - 1];
		int32		to = i < log->nparts ? log->starts[i] : log->content_len;

		if (i == 0)
			to = head;
		slices[i] = replace_slice(log->content + from, to - from, pattern,
								  replacement, flags);
		if (VARSIZE_ANY_EXHDR(slices[i]) != (Size) (to - from) ||
			memcmp(VARDATA_ANY(slices[i]), log->content + from, to - from) != 0)
			changed++;
		total += VARSIZE_ANY_EXHDR(slices[i]);
		CHECK_FOR_INTERRUPTS();
	}
	if (total > (int64) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("redacted log of job " INT64_FORMAT " would exceed the maximum size of a text value",
						log->job_id)));
	*content = (text *) palloc(total + VARHDRSZ);
	SET_VARSIZE(*content, total + VARHDRSZ);
	p = VARDATA(*content);
	for (int i = 0; i <= log->nparts; i++)
	{
		if (i > 0)
			offsets[i - 1] = Int32GetDatum((int32) (p - VARDATA(*content)));
		memcpy(p, VARDATA_ANY(slices[i]), VARSIZE_ANY_EXHDR(slices[i]));
		p += VARSIZE_ANY_EXHDR(slices[i]);
	}
	*starts = construct_array(offsets, log->nparts, INT4OID, 4, true, TYPALIGN_INT);
	return changed;
}

/* Store the redacted content; the archive is uploaded again over the old one. */
static void
store(int64 job_id, text *content, ArrayType *starts)
{
	Oid			types[3] = {INT8OID, TEXTOID, INT4ARRAYOID};
	Datum		values[3] = {Int64GetDatum(job_id), PointerGetDatum(content),
	PointerGetDatum(starts)};

	buildlog_run(buildlog_plan(&store_plan,
							   "update buildlog.logs set content = $2, part_starts = $3,"
							   " updated_at = pg_catalog.now(), " ARCHIVE_RESET_SQL
							   " where job_id = $1",
							   3, types),
				 values, NULL, false, SPI_OK_UPDATE);
}

/*
 * redact(job_id, pattern, replacement, flags) returns the number of parts
 * (the head counting as one) that changed; NULL for an unknown job.
 */
Datum
buildlog_redact(PG_FUNCTION_ARGS)
{
	int64		job_id;
	text	   *pattern;
	text	   *replacement;
	text	   *flags;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	StoredLog	log;
	text	   *content;
	ArrayType  *starts;
	int			changed;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("redact() arguments must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	pattern = PG_GETARG_TEXT_PP(1);
	replacement = PG_GETARG_TEXT_PP(2);
	flags = PG_GETARG_TEXT_PP(3);
	if (VARSIZE_ANY_EXHDR(pattern) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("redact() needs a non-empty pattern")));

	SPI_connect();
	/*
	 * Pending parts first (the secret may sit in a part not merged yet).
	 * aggregate() also takes the row lock, then the job's lock, in the
	 * order every path uses; both are held to the end of the transaction.
	 */
	values[0] = Int64GetDatum(job_id);
	buildlog_run(buildlog_plan(&aggregate_plan, "select buildlog.aggregate($1)",
							   1, types),
				 values, NULL, false, SPI_OK_SELECT);
	buildlog_lock_stored_log(job_id, &log);
	if (!log.found)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	if (log.purged)
		buildlog_restore_purged(job_id, &log);
	if (log.content == NULL)
	{
		SPI_finish();
		PG_RETURN_INT32(0);
	}
	buildlog_check_stored(&log);
	changed = rewrite_parts(&log, pattern, replacement, flags, &content, &starts);
	if (still_matches(content, pattern, flags))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern still matches the redacted log of job " INT64_FORMAT, job_id),
				 errdetail("A match spans two parts (redact() rewrites one part at a time), or the replacement matches the pattern. Nothing was changed."),
				 errhint("Use a pattern that matches within a line, or replace the whole text with buildlog.set_content().")));
	if (changed > 0)
		store(job_id, content, starts);
	SPI_finish();
	PG_RETURN_INT32(changed);
}
