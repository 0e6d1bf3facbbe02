/*-------------------------------------------------------------------------
 * spiutil.c
 *	  Small helpers around SPI kept plans.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "spiutil.h"

/* Prepare sql once per backend into *slot and return the kept plan. */
SPIPlanPtr
buildlog_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*slot = plan;
	}
	return *slot;
}

/* Run a kept plan and insist on the expected SPI result code. */
void
buildlog_run(SPIPlanPtr plan, Datum *values, const char *nulls,
			 bool read_only, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan returned %s, expected %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected));
}

/* Run the kept plan of sql with $1 = id (int8). */
void
buildlog_run_by_id(SPIPlanPtr *slot, const char *sql, int64 id,
				   bool read_only, int expected)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};

	buildlog_run(buildlog_plan(slot, sql, 1, types), values, NULL, read_only,
				 expected);
}
