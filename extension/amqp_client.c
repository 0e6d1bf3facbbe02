/*-------------------------------------------------------------------------
 * amqp_client.c
 *	  librabbitmq connection handling for the drain workers and for
 *	  declare_queues().
 *
 * Every function here returns a status and leaves a message (never with
 * the password) in the link; the caller decides whether and how to log.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <stdio.h>
#include <sys/socket.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "lib/stringinfo.h"

#include "amqp_client.h"
#include "guc.h"

#define CONNECT_TIMEOUT_S	3
#define RPC_TIMEOUT_S		10
#define FRAME_MAX			131072
#define PASSWORD_MAX		1024

/* Describe a failed RPC reply. */
static void
reply_error(char *buf, const char *what, amqp_rpc_reply_t r)
{
	switch (r.reply_type)
	{
		case AMQP_RESPONSE_NORMAL:
			snprintf(buf, AMQP_ERROR_LEN, "%s: ok", what);
			break;
		case AMQP_RESPONSE_NONE:
			snprintf(buf, AMQP_ERROR_LEN, "%s: no reply", what);
			break;
		case AMQP_RESPONSE_LIBRARY_EXCEPTION:
			snprintf(buf, AMQP_ERROR_LEN, "%s: %s", what,
					 amqp_error_string2(r.library_error));
			break;
		case AMQP_RESPONSE_SERVER_EXCEPTION:
			if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
			{
				amqp_connection_close_t *m = r.reply.decoded;

				snprintf(buf, AMQP_ERROR_LEN, "%s: connection closed by broker: %u %.*s",
						 what, m->reply_code, (int) m->reply_text.len,
						 (char *) m->reply_text.bytes);
			}
			else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
			{
				amqp_channel_close_t *m = r.reply.decoded;

				snprintf(buf, AMQP_ERROR_LEN, "%s: channel closed by broker: %u %.*s",
						 what, m->reply_code, (int) m->reply_text.len,
						 (char *) m->reply_text.bytes);
			}
			else
				snprintf(buf, AMQP_ERROR_LEN, "%s: broker error (method 0x%08X)",
						 what, r.reply.id);
			break;
	}
}

/* Append one URL (len bytes at url) to buf with its password replaced by "***". */
static void
redact_one(StringInfo buf, const char *url, size_t len)
{
	const char *scheme = memmem(url, len, "://", 3);
	const char *start = scheme ? scheme + 3 : url;
	const char *at = memchr(start, '@', len - (start - url));
	const char *colon = at ? memchr(start, ':', at - start) : NULL;

	if (colon == NULL)
		appendBinaryStringInfo(buf, url, len);
	else
	{
		appendBinaryStringInfo(buf, url, colon - url);
		appendStringInfoString(buf, ":***");
		appendBinaryStringInfo(buf, at, len - (at - url));
	}
}

/* Replace the password of each URL of a comma-separated list by "***" for messages. */
const char *
buildlog_amqp_redact(const char *url, char *out, size_t len)
{
	StringInfoData buf;
	const char *p = url;

	initStringInfo(&buf);
	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		n = comma ? (size_t) (comma - p) : strlen(p);

		redact_one(&buf, p, n);
		if (comma == NULL)
			break;
		appendStringInfoChar(&buf, ',');
		p = comma + 1;
	}
	strlcpy(out, buf.data, len);
	pfree(buf.data);
	return out;
}

int
buildlog_amqp_url_count(const char *urls)
{
	int			n = 1;

	for (const char *p = urls; *p; p++)
		n += *p == ',';
	return n;
}

char *
buildlog_amqp_url_nth(const char *urls, int i)
{
	const char *p = urls;
	const char *end;

	i %= buildlog_amqp_url_count(urls);
	while (i-- > 0)
		p = strchr(p, ',') + 1;
	end = strchr(p, ',');
	if (end == NULL)
		end = p + strlen(p);
	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;
	return pnstrdup(p, end - p);
}

/*
 * Read buildlog.amqp_password_file into buf (trimmed of surrounding
 * whitespace); false with link->error (the path, never the content).
 */
static bool
read_password_file(AmqpLink *link, const char *path, char *buf, size_t len)
{
	FILE	   *f = fopen(path, "r");
	size_t		n;
	char	   *start = buf;
	char	   *end;

	if (f == NULL)
	{
		snprintf(link->error, AMQP_ERROR_LEN,
				 "could not open buildlog.amqp_password_file \"%s\": %m", path);
		return false;
	}
	n = fread(buf, 1, len - 1, f);
	if (ferror(f) || !feof(f))
	{
		snprintf(link->error, AMQP_ERROR_LEN, ferror(f)
				 ? "could not read buildlog.amqp_password_file \"%s\""
				 : "buildlog.amqp_password_file \"%s\" is too large", path);
		fclose(f);
		memset(buf, 0, len);
		return false;
	}
	fclose(f);
	buf[n] = '\0';
	while (*start != '\0' && isspace((unsigned char) *start))
		start++;
	end = start + strlen(start);
	while (end > start && isspace((unsigned char) end[-1]))
		*--end = '\0';
	if (*start == '\0')
	{
		snprintf(link->error, AMQP_ERROR_LEN,
				 "buildlog.amqp_password_file \"%s\" is empty", path);
		return false;
	}
	memmove(buf, start, end - start + 1);
	return true;
}

/* Open a channel; false with link->error on failure. */
static bool
open_channel(AmqpLink *link, int channel)
{
	amqp_rpc_reply_t r;

	amqp_channel_open(link->conn, channel);
	r = amqp_get_rpc_reply(link->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		reply_error(link->error, "could not open a channel", r);
		return false;
	}
	return true;
}

/* Open the TCP connection and log in; false with link->error on failure. */
static bool
open_connection(AmqpLink *link, const char *url, int heartbeat_s)
{
	struct amqp_connection_info info;
	char	   *copy = pstrdup(url);
	amqp_socket_t *socket;
	struct timeval tv = {CONNECT_TIMEOUT_S, 0};
	struct timeval rpc = {RPC_TIMEOUT_S, 0};
	amqp_rpc_reply_t r;
	int			status;
	int			one = 1;
	char		password[PASSWORD_MAX];
	bool		ok;

	amqp_default_connection_info(&info);
	if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "invalid buildlog.amqp_url");
		return false;
	}
	if (buildlog_amqp_password_file != NULL && buildlog_amqp_password_file[0] != '\0')
	{
		if (!read_password_file(link, buildlog_amqp_password_file, password,
								sizeof(password)))
		{
			memset(copy, 0, strlen(url));
			return false;
		}
		info.password = password;
	}
	snprintf(link->where, AMQP_ERROR_LEN, "%s:%d%s%s", info.host, info.port,
			 info.vhost[0] == '/' ? "" : "/", info.vhost);
	ok = !info.ssl;
	if (!ok)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "amqps:// is not supported");
		memset(copy, 0, strlen(url));
		memset(password, 0, sizeof(password));
		return false;
	}

	link->conn = amqp_new_connection();
	socket = amqp_tcp_socket_new(link->conn);
	if (socket == NULL)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "could not create a socket");
		return false;
	}
	status = amqp_socket_open_noblock(socket, info.host, info.port, &tv);
	if (status != AMQP_STATUS_OK)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "could not connect to %s: %s",
				 link->where, amqp_error_string2(status));
		return false;
	}
	(void) setsockopt(amqp_get_sockfd(link->conn), SOL_SOCKET, SO_KEEPALIVE,
					  &one, sizeof(one));
	amqp_set_handshake_timeout(link->conn, &rpc);
	amqp_set_rpc_timeout(link->conn, &rpc);
	r = amqp_login(link->conn, info.vhost, 0, FRAME_MAX, heartbeat_s,
				   AMQP_SASL_METHOD_PLAIN, info.user, info.password);
	/* do not keep the password around */
	memset(copy, 0, strlen(url));
	memset(password, 0, sizeof(password));
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		char		what[AMQP_ERROR_LEN];

		snprintf(what, sizeof(what), "could not log in to %s", link->where);
		reply_error(link->error, what, r);
		return false;
	}
	return open_channel(link, 1);
}

bool
buildlog_amqp_connect(AmqpLink *link, const char *url, char **queues,
					  int nqueues, int prefetch, int heartbeat_s)
{
	amqp_rpc_reply_t r;
	int			i;

	memset(link, 0, sizeof(*link));
	if (!open_connection(link, url, heartbeat_s))
	{
		buildlog_amqp_disconnect(link);
		return false;
	}
	amqp_basic_qos(link->conn, 1, 0, (uint16) Min(prefetch, 65535), 0);
	r = amqp_get_rpc_reply(link->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		reply_error(link->error, "basic.qos failed", r);
		buildlog_amqp_disconnect(link);
		return false;
	}
	for (i = 0; i < nqueues; i++)
	{
		amqp_basic_consume(link->conn, 1, amqp_cstring_bytes(queues[i]),
						   amqp_cstring_bytes(queues[i]), 0, 0, 0,
						   amqp_empty_table);
		r = amqp_get_rpc_reply(link->conn);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
		{
			char		what[AMQP_ERROR_LEN];

			snprintf(what, sizeof(what), "could not consume queue \"%s\"", queues[i]);
			reply_error(link->error, what, r);
			buildlog_amqp_disconnect(link);
			return false;
		}
	}
	link->connected = true;
	return true;
}

/* Drop the connection; unacked deliveries go back to their queues. */
void
buildlog_amqp_disconnect(AmqpLink *link)
{
	if (link->conn != NULL)
		amqp_destroy_connection(link->conn);
	link->conn = NULL;
	link->connected = false;
}

/* True when a frame or bytes already sit in librabbitmq's buffers. */
bool
buildlog_amqp_buffered(AmqpLink *link)
{
	return amqp_frames_enqueued(link->conn) || amqp_data_in_buffer(link->conn);
}

int
buildlog_amqp_fd(AmqpLink *link)
{
	return amqp_get_sockfd(link->conn);
}

/* Copy an amqp_bytes_t into a palloc'd C string. */
static char *
bytes_dup(amqp_bytes_t b)
{
	char	   *s = palloc(b.len + 1);

	memcpy(s, b.bytes, b.len);
	s[b.len] = '\0';
	return s;
}

/* Record a close by the broker of what ("channel", "connection"); -1. */
static int
closed_by_broker(AmqpLink *link, const char *what, uint16 code,
				 amqp_bytes_t text)
{
	snprintf(link->error, AMQP_ERROR_LEN, "%s closed by broker: %u %.*s",
			 what, code, (int) text.len, (char *) text.bytes);
	return -1;
}

/* Handle a non-delivery frame; -1 when it ends the connection. */
static int
other_frame(AmqpLink *link)
{
	amqp_frame_t frame;
	struct timeval zero = {0, 0};
	int			status = amqp_simple_wait_frame_noblock(link->conn, &frame, &zero);
	amqp_channel_close_t *channel;
	amqp_connection_close_t *connection;

	if (status == AMQP_STATUS_TIMEOUT)
		return 0;
	if (status != AMQP_STATUS_OK)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "connection to %s lost: %s",
				 link->where, amqp_error_string2(status));
		return -1;
	}
	if (frame.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (frame.payload.method.id)
	{
		case AMQP_CHANNEL_CLOSE_METHOD:
			channel = frame.payload.method.decoded;
			return closed_by_broker(link, "channel", channel->reply_code,
									channel->reply_text);
		case AMQP_CONNECTION_CLOSE_METHOD:
			connection = frame.payload.method.decoded;
			return closed_by_broker(link, "connection", connection->reply_code,
									connection->reply_text);
		case AMQP_BASIC_CANCEL_METHOD:
			snprintf(link->error, AMQP_ERROR_LEN,
					 "consumer cancelled by broker (queue deleted?)");
			return -1;
		default:
			return 0;
	}
}

/*
 * Take the next delivery if one can be read without waiting: 1 = *d filled
 * (palloc'd in CurrentMemoryContext), 0 = nothing yet, -1 = connection
 * unusable (link->error says why).  Also services heartbeats.
 */
int
buildlog_amqp_next(AmqpLink *link, AmqpDelivery *d)
{
	amqp_envelope_t env;
	struct timeval zero = {0, 0};
	amqp_rpc_reply_t r;

	if (link->conn == NULL)
	{
		strlcpy(link->error, "not connected", sizeof(link->error));
		return -1;
	}
	amqp_maybe_release_buffers(link->conn);
	r = amqp_consume_message(link->conn, &env, &zero, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
	{
		d->tag = env.delivery_tag;
		d->redelivered = env.redelivered != 0;
		d->queue = bytes_dup(env.consumer_tag);
		d->exchange = bytes_dup(env.exchange);
		d->routing_key = bytes_dup(env.routing_key);
		d->len = env.message.body.len;
		d->body = palloc(d->len + 1);
		memcpy(d->body, env.message.body.bytes, d->len);
		d->body[d->len] = '\0';
		amqp_destroy_envelope(&env);
		return 1;
	}
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
	{
		if (r.library_error == AMQP_STATUS_TIMEOUT)
			return 0;
		if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
			return other_frame(link);
	}
	reply_error(link->error, "connection lost", r);
	return -1;
}

/*
 * Tell the broker we are alive without reading from the socket: while a
 * failed batch waits for its retry the worker reads no deliveries, but the
 * broker closes a connection that sends nothing for two heartbeats.  The
 * broker's own heartbeats wait in the socket (librabbitmq counts them when
 * reading resumes).  False with link->error when the send failed.
 */
bool
buildlog_amqp_keepalive(AmqpLink *link)
{
	amqp_frame_t frame;
	int			status;

	if (link->conn == NULL || amqp_get_heartbeat(link->conn) == 0)
		return link->conn != NULL;
	memset(&frame, 0, sizeof(frame));
	frame.frame_type = AMQP_FRAME_HEARTBEAT;
	frame.channel = 0;
	status = amqp_send_frame(link->conn, &frame);
	if (status != AMQP_STATUS_OK)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "connection to %s lost: %s",
				 link->where, amqp_error_string2(status));
		return false;
	}
	return true;
}

/* ack (or nack with requeue) every delivery up to tag. */
bool
buildlog_amqp_settle(AmqpLink *link, uint64 tag, bool ack)
{
	int			status;

	if (ack)
		status = amqp_basic_ack(link->conn, 1, tag, 1);
	else
		status = amqp_basic_nack(link->conn, 1, tag, 1, 1);
	if (status != AMQP_STATUS_OK)
	{
		snprintf(link->error, AMQP_ERROR_LEN, "could not %s deliveries: %s",
				 ack ? "ack" : "nack", amqp_error_string2(status));
		return false;
	}
	return true;
}

/*
 * Does the queue exist?  A passive declare on the channel; the broker
 * closes the channel when it does not (404): that close is answered and
 * *channel reopened as the next number.  False with link->error when the
 * broker said something else.
 */
static bool
queue_exists(AmqpLink *link, int *channel, const char *queue, bool *exists)
{
	amqp_rpc_reply_t r;
	amqp_channel_close_ok_t close_ok;

	amqp_queue_declare(link->conn, *channel, amqp_cstring_bytes(queue), 1, 0, 0, 0,
					   amqp_empty_table);
	r = amqp_get_rpc_reply(link->conn);
	*exists = r.reply_type == AMQP_RESPONSE_NORMAL;
	if (*exists)
		return true;
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
		((amqp_channel_close_t *) r.reply.decoded)->reply_code != AMQP_NOT_FOUND)
	{
		reply_error(link->error, "could not check a queue", r);
		return false;
	}
	(void) amqp_send_method(link->conn, *channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
	(*channel)++;
	return open_channel(link, *channel);
}

/*
 * Does the exchange exist?  Like queue_exists: a passive declare, the 404
 * answered and *channel reopened as the next number.
 */
static bool
exchange_exists(AmqpLink *link, int *channel, const char *exchange, bool *exists)
{
	amqp_rpc_reply_t r;
	amqp_channel_close_ok_t close_ok;

	amqp_exchange_declare(link->conn, *channel, amqp_cstring_bytes(exchange),
						  amqp_cstring_bytes("x-modulus-hash"), 1, 0, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(link->conn);
	*exists = r.reply_type == AMQP_RESPONSE_NORMAL;
	if (*exists)
		return true;
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
		((amqp_channel_close_t *) r.reply.decoded)->reply_code != AMQP_NOT_FOUND)
	{
		reply_error(link->error, "could not check the exchange", r);
		return false;
	}
	(void) amqp_send_method(link->conn, *channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
	(*channel)++;
	return open_channel(link, *channel);
}

/*
 * Declare durable queues of queue_type ("quorum", "classic"; NULL: no
 * x-queue-type, the vhost's default) that do not exist yet (an existing
 * queue is kept as it is: its type cannot change) and, when exchange is
 * given, the exchange routing to them: a new one is x-modulus-hash, as
 * travis-worker declares its sharded exchange (rabbitmq_sharding plugin); an
 * existing one keeps its type (an x-consistent-hash exchange reads the
 * binding key "1" as the queue's weight, x-modulus-hash ignores it).  Tries
 * the URLs of the list in turn until one answers.
 */
bool
buildlog_amqp_declare(const char *urls, const char *exchange, char **queues,
					  int nqueues, const char *queue_type, char *error)
{
	AmqpLink	link;
	amqp_rpc_reply_t r;
	amqp_table_entry_t type_arg;
	amqp_table_t args = amqp_empty_table;
	int			channel = 1;
	int			i;
	bool		ok = false;

	if (queue_type != NULL)
	{
		type_arg.key = amqp_cstring_bytes("x-queue-type");
		type_arg.value.kind = AMQP_FIELD_KIND_UTF8;
		type_arg.value.value.bytes = amqp_cstring_bytes(queue_type);
		args.num_entries = 1;
		args.entries = &type_arg;
	}
	memset(&link, 0, sizeof(link));
	for (i = 0; i < buildlog_amqp_url_count(urls); i++)
	{
		if (open_connection(&link, buildlog_amqp_url_nth(urls, i), 0))
			break;
		if (link.conn != NULL)
			amqp_destroy_connection(link.conn);
		link.conn = NULL;
	}
	if (link.conn == NULL)
		goto done;
	if (exchange != NULL)
	{
		bool		exists;

		if (!exchange_exists(&link, &channel, exchange, &exists))
			goto done;
		if (!exists)
		{
			amqp_exchange_declare(link.conn, channel, amqp_cstring_bytes(exchange),
								  amqp_cstring_bytes("x-modulus-hash"),
								  0, 1, 0, 0, amqp_empty_table);
			r = amqp_get_rpc_reply(link.conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
			{
				reply_error(link.error, "could not declare the exchange", r);
				goto done;
			}
		}
	}
	for (i = 0; i < nqueues; i++)
	{
		bool		exists;

		if (!queue_exists(&link, &channel, queues[i], &exists))
			goto done;
		if (!exists)
		{
			amqp_queue_declare(link.conn, channel, amqp_cstring_bytes(queues[i]),
							   0, 1, 0, 0, args);
			r = amqp_get_rpc_reply(link.conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
			{
				reply_error(link.error, "could not declare a queue", r);
				goto done;
			}
		}
		if (exchange != NULL)
		{
			amqp_queue_bind(link.conn, channel, amqp_cstring_bytes(queues[i]),
							amqp_cstring_bytes(exchange), amqp_cstring_bytes("1"),
							amqp_empty_table);
			r = amqp_get_rpc_reply(link.conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL)
			{
				reply_error(link.error, "could not bind a queue", r);
				goto done;
			}
		}
	}
	ok = true;
done:
	if (!ok)
		strlcpy(error, link.error, AMQP_ERROR_LEN);
	if (link.conn != NULL)
	{
		if (ok)
		{
			amqp_channel_close(link.conn, channel, AMQP_REPLY_SUCCESS);
			amqp_connection_close(link.conn, AMQP_REPLY_SUCCESS);
		}
		amqp_destroy_connection(link.conn);
	}
	return ok;
}
