/*-------------------------------------------------------------------------
 * declare_queues.c
 *	  declare_queues(): the documented way to set up RabbitMQ for buildlog.
 *
 * Declares the durable queue travis-worker publishes to or, for a sharded
 * deployment, the exchange that routes by job id (the routing key) to N
 * durable queues: x-modulus-hash, as travis-worker declares it, unless it
 * exists already with another type.  New queues are quorum queues
 * (replicated over a cluster's nodes) unless asked otherwise; a queue that
 * exists keeps its type.  Uses buildlog.amqp_url (its first node that
 * answers).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "amqp_client.h"
#include "guc.h"

PG_FUNCTION_INFO_V1(buildlog_declare_queues);

/*
 * declare_queues(queue, shards, exchange, queue_type) returns the queue
 * names.  (Declared with three arguments by 0.3.0: no queue type is sent.)
 */
Datum
buildlog_declare_queues(PG_FUNCTION_ARGS)
{
	char	   *queue = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			shards = PG_GETARG_INT32(1);
	char	   *exchange = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *queue_type = PG_NARGS() > 3 ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n = Max(shards, 1);
	char	  **names = palloc(sizeof(char *) * n);
	char		error[AMQP_ERROR_LEN];
	char		shown[1024];
	int			i;

	if (shards < 0 || shards > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shards must be between 0 and 1024"),
				 errdetail("shards is %d.", shards)));
	if (queue_type != NULL && strcmp(queue_type, "quorum") != 0 && strcmp(queue_type, "classic") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("queue_type must be \"quorum\" or \"classic\""),
				 errdetail("queue_type is \"%s\".", queue_type),
				 errhint("Quorum queues keep every confirmed message when a node of a RabbitMQ cluster dies; classic queues live on one node.")));
	for (i = 0; i < n; i++)
		names[i] = shards == 0 ? queue : psprintf("%s.%d", queue, i + 1);

	if (!buildlog_amqp_declare(buildlog_amqp_url, shards > 0 ? exchange : NULL,
							   names, n, queue_type, error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not declare the buildlog queues"),
				 errdetail("%s (buildlog.amqp_url is %s)", error,
						   buildlog_amqp_redact(buildlog_amqp_url, shown, sizeof(shown))),
				 errhint("Check that RabbitMQ runs and buildlog.amqp_url is right; sharding needs the rabbitmq_sharding plugin (x-modulus-hash).")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i < n; i++)
	{
		Datum		value = CStringGetTextDatum(names[i]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}
