/*-------------------------------------------------------------------------
 * stream_offsets.c
 *	  Where each job's HTTP stream upload stands, kept in the database.
 *
 * A runner streaming its output (POST /jobs/{id}/stream) resumes by raw
 * byte offset.  The offset is written by the group commit in the same
 * transaction as the parts it covers, so it is exactly what the database
 * holds: after a restart of the HTTP worker, or on a promoted standby, the
 * runner is told the right offset.  A library built for 0.3.1 may run
 * against an older schema (before ALTER EXTENSION ... UPDATE): then there
 * is no table and nothing is kept.
 *
 * The rows are the extension's bookkeeping: set_content() forgets a job's
 * row as the table's owner, so the roles allowed to set a log need no
 * privilege on it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "spiutil.h"
#include "stream_offsets.h"

static SPIPlanPtr store_plan = NULL;
static SPIPlanPtr forget_plan = NULL;

/* The table's oid, InvalidOid when the schema has none. */
static Oid
stream_offsets_relid(void)
{
	Oid			nsp = get_namespace_oid("buildlog", true);

	return OidIsValid(nsp) ? get_relname_relid("stream_offsets", nsp) : InvalidOid;
}

bool
buildlog_stream_offsets_present(void)
{
	return OidIsValid(stream_offsets_relid());
}

void
buildlog_stream_offsets_store(const int64 *jobs, const int64 *raw, const int32 *next, int n)
{
	Oid			types[3] = {INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[3];
	Datum	   *d[3];

	if (n == 0 || !buildlog_stream_offsets_present())
		return;
	for (int k = 0; k < 3; k++)
		d[k] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		d[0][i] = Int64GetDatum(jobs[i]);
		d[1][i] = Int64GetDatum(raw[i]);
		d[2][i] = Int32GetDatum(next[i]);
	}
	values[0] = PointerGetDatum(construct_array(d[0], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(d[1], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(d[2], n, INT4OID, 4, true, TYPALIGN_INT));
	buildlog_run(buildlog_plan(&store_plan,
							   "insert into buildlog.stream_offsets as o (job_id, raw_bytes, next_number)"
							   " select * from unnest($1, $2, $3)"
							   " on conflict (job_id) do update set raw_bytes = excluded.raw_bytes,"
							   " next_number = greatest(o.next_number, excluded.next_number),"
							   " updated_at = now()",
							   3, types),
				 values, NULL, false, SPI_OK_INSERT);
}

void
buildlog_stream_offsets_forget(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	Oid			relid = stream_offsets_relid();
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	HeapTuple	tuple;

	if (!OidIsValid(relid))
		return;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	/* as the table's owner, restored on error by the transaction's abort */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	buildlog_run(buildlog_plan(&forget_plan,
							   "delete from buildlog.stream_offsets where job_id = $1",
							   1, types),
				 values, NULL, false, SPI_OK_DELETE);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}
