/*-------------------------------------------------------------------------
 * amqp_client.h
 *	  A consuming AMQP connection (librabbitmq) for a drain worker.
 *
 * librabbitmq does no background work: heartbeats are serviced only inside
 * its calls, so the worker calls buildlog_amqp_next() at least once a
 * second, also when idle.  Errors are reported as text without the
 * password; nothing here raises a PostgreSQL ERROR.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_AMQP_CLIENT_H
#define BUILDLOG_AMQP_CLIENT_H

#include "postgres.h"

#include <amqp.h>

#define AMQP_ERROR_LEN 256

typedef struct AmqpLink
{
	amqp_connection_state_t conn;
	bool		connected;
	char		error[AMQP_ERROR_LEN];
	char		where[AMQP_ERROR_LEN];	/* host:port/vhost, no credentials */
} AmqpLink;

/* One delivery, copied out of librabbitmq's buffers. */
typedef struct AmqpDelivery
{
	uint64		tag;
	bool		redelivered;
	char	   *queue;			/* our consumer tag is the queue name */
	char	   *exchange;
	char	   *routing_key;
	char	   *body;
	size_t		len;
} AmqpDelivery;

extern bool buildlog_amqp_connect(AmqpLink *link, const char *url,
								  char **queues, int nqueues,
								  int prefetch, int heartbeat_s);
extern void buildlog_amqp_disconnect(AmqpLink *link);
extern int	buildlog_amqp_next(AmqpLink *link, AmqpDelivery *d);
extern bool buildlog_amqp_buffered(AmqpLink *link);
extern int	buildlog_amqp_fd(AmqpLink *link);
extern bool buildlog_amqp_keepalive(AmqpLink *link);
extern bool buildlog_amqp_settle(AmqpLink *link, uint64 tag, bool ack);
extern bool buildlog_amqp_declare(const char *urls, const char *exchange,
								  char **queues, int nqueues, const char *queue_type,
								  char *error);
extern const char *buildlog_amqp_redact(const char *url, char *buf, size_t len);

/*
 * buildlog.amqp_url may list several URLs, separated by commas (the nodes
 * of a cluster): how many, and the i-th (modulo their number; trimmed,
 * palloc'd).
 */
extern int	buildlog_amqp_url_count(const char *urls);
extern char *buildlog_amqp_url_nth(const char *urls, int i);

#endif							/* BUILDLOG_AMQP_CLIENT_H */
