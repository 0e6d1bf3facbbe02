/*-------------------------------------------------------------------------
 * old_entry_points.c
 *	  Entry points under the names older install and update scripts give
 *	  them (0.1.0, 0.2.0).
 *
 * CREATE FUNCTION checks that its symbol exists, so installing 0.1.0 with
 * this library (the update path a DBA takes: ALTER EXTENSION ... UPDATE
 * afterwards) needs every name those scripts used.  Each forwards to the
 * function now named buildlog_<sql name>; nothing else may call them.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

/* The current entry points (read.c, s3_sql.c, stats.c). */
extern PGDLLEXPORT Datum buildlog_fetch(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_s3_get(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_s3_head(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_s3_verify(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_drain_worker_stats(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_scheduler_worker_stats(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum buildlog_archive_worker_stats(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(buildlog_log);
PG_FUNCTION_INFO_V1(buildlog_s3_get_object);
PG_FUNCTION_INFO_V1(buildlog_s3_head_object);
PG_FUNCTION_INFO_V1(buildlog_s3_verify_object);
PG_FUNCTION_INFO_V1(buildlog_drain_stats);
PG_FUNCTION_INFO_V1(buildlog_scheduler_stats);
PG_FUNCTION_INFO_V1(buildlog_archive_stats);

/* log() and fetch() before 0.3.0. */
Datum
buildlog_log(PG_FUNCTION_ARGS)
{
	return buildlog_fetch(fcinfo);
}

/* s3_get() before 0.3.0. */
Datum
buildlog_s3_get_object(PG_FUNCTION_ARGS)
{
	return buildlog_s3_get(fcinfo);
}

/* s3_head() before 0.3.0. */
Datum
buildlog_s3_head_object(PG_FUNCTION_ARGS)
{
	return buildlog_s3_head(fcinfo);
}

/* s3_verify() before 0.3.0. */
Datum
buildlog_s3_verify_object(PG_FUNCTION_ARGS)
{
	return buildlog_s3_verify(fcinfo);
}

/* drain_worker_stats() before 0.3.0. */
Datum
buildlog_drain_stats(PG_FUNCTION_ARGS)
{
	return buildlog_drain_worker_stats(fcinfo);
}

/* scheduler_worker_stats() before 0.3.0. */
Datum
buildlog_scheduler_stats(PG_FUNCTION_ARGS)
{
	return buildlog_scheduler_worker_stats(fcinfo);
}

/* archive_worker_stats() before 0.3.0. */
Datum
buildlog_archive_stats(PG_FUNCTION_ARGS)
{
	return buildlog_archive_worker_stats(fcinfo);
}
