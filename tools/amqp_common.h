/*
 * amqp_common.h - the AMQP side shared by tools/publish and bench/consume_raw
 * (librabbitmq): connect and log in, explain and check RPC replies, notice
 * the broker closing us, close.  Every failure dies with a message naming
 * what failed (see common.h).
 */
#ifndef TOOLS_AMQP_COMMON_H
#define TOOLS_AMQP_COMMON_H

#include <amqp.h>

/* the broker to use: url (--url), else $BUILDLOG_AMQP_URL, else amqp://guest:guest@localhost:5672 */
extern const char *broker_url(const char *url);

/* a connection to url (amqp://user:pass@host:port[/vhost]) with channel 1 open */
extern amqp_connection_state_t connect_broker(const char *url);

/* what went wrong in an RPC reply, as text (a static buffer) */
extern const char *rpc_error(amqp_rpc_reply_t r);

/* die with "what: reason" unless the last RPC on conn succeeded */
extern void check_rpc(amqp_connection_state_t conn, const char *what);

/* die if frame f is the broker closing the channel or the connection */
extern void die_if_closed(const amqp_frame_t *f);

/* channel.close and connection.close, checked; frees conn */
extern void close_broker(amqp_connection_state_t conn);

#endif
