/*
 * amqp_common.c - connection, login, RPC error reporting and close for the
 * tools (see amqp_common.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "amqp_common.h"
#include "common.h"

/* one default for every tool: --url, $BUILDLOG_AMQP_URL, the local broker */
const char *
broker_url(const char *url)
{
	if (!url)
		url = getenv("BUILDLOG_AMQP_URL");
	return url && *url ? url : "amqp://guest:guest@localhost:5672";
}

/* an RPC reply's failure as text, the broker's reply code and text included */
const char *
rpc_error(amqp_rpc_reply_t r)
{
	static char msg[512];

	switch (r.reply_type)
	{
		case AMQP_RESPONSE_NORMAL:
			return "ok";
		case AMQP_RESPONSE_NONE:
			return "missing RPC reply";
		case AMQP_RESPONSE_LIBRARY_EXCEPTION:
			return amqp_error_string2(r.library_error);
		case AMQP_RESPONSE_SERVER_EXCEPTION:
			if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
			{
				amqp_connection_close_t *m = r.reply.decoded;

				snprintf(msg, sizeof msg, "broker closed the connection: %u %.*s",
						 m->reply_code, (int) m->reply_text.len, (char *) m->reply_text.bytes);
			}
			else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
			{
				amqp_channel_close_t *m = r.reply.decoded;

				snprintf(msg, sizeof msg, "broker closed the channel: %u %.*s",
						 m->reply_code, (int) m->reply_text.len, (char *) m->reply_text.bytes);
			}
			else
				snprintf(msg, sizeof msg, "unexpected broker method 0x%08x", r.reply.id);
			return msg;
	}
	return "unknown error";
}

/* the last RPC on conn succeeded, or die saying what failed */
void
check_rpc(amqp_connection_state_t conn, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);

	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("%s: %s", what, rpc_error(r));
}

/* TCP connection, PLAIN login and channel 1, each failure named */
amqp_connection_state_t
connect_broker(const char *url_in)
{
	struct amqp_connection_info ci;
	char	   *url = strdup(url_in);
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	struct timeval tv = {10, 0};
	amqp_rpc_reply_t r;
	int			st;

	amqp_default_connection_info(&ci);
	if (!url || amqp_parse_url(url, &ci) != AMQP_STATUS_OK)
		die("cannot parse AMQP URL (expected amqp://user:pass@host:port[/vhost])");
	if (ci.ssl)
		die("amqps:// is not supported");
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (!sock)
		die("cannot create a TCP socket");
	st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (st != AMQP_STATUS_OK)
		die("cannot connect to %s:%d: %s", ci.host, ci.port, amqp_error_string2(st));
	r = amqp_login(conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("login to %s:%d vhost '%s' as '%s' failed: %s", ci.host, ci.port, ci.vhost, ci.user,
			rpc_error(r));
	amqp_channel_open(conn, 1);
	check_rpc(conn, "channel.open");
	free(url);
	return conn;
}

/* a close frame from the broker ends the tool with the broker's reason */
void
die_if_closed(const amqp_frame_t *f)
{
	if (f->frame_type != AMQP_FRAME_METHOD)
		return;
	if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD)
	{
		amqp_channel_close_t *m = f->payload.method.decoded;

		die("broker closed the channel: %u %.*s", m->reply_code,
			(int) m->reply_text.len, (char *) m->reply_text.bytes);
	}
	if (f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
	{
		amqp_connection_close_t *m = f->payload.method.decoded;

		die("broker closed the connection: %u %.*s", m->reply_code,
			(int) m->reply_text.len, (char *) m->reply_text.bytes);
	}
}

/* a clean close, checked, so that a late broker error is not missed */
void
close_broker(amqp_connection_state_t conn)
{
	amqp_rpc_reply_t r = amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);

	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("channel.close: %s", rpc_error(r));
	r = amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("connection.close: %s", rpc_error(r));
	amqp_destroy_connection(conn);
}
