/*-------------------------------------------------------------------------
 * limits.h
 *	  Limits on clients (limits.c): connections and requests per client
 *	  address, deadlines for slow clients, the worker's open-file limit.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_LIMITS_H
#define BUILDLOG_HTTP_LIMITS_H

#include "http/server.h"

/* Where a connection is, for its deadline. */
typedef enum HttpPhase
{
	HTTP_PHASE_BODY,			/* a bounded upload's body: as long again */
	HTTP_PHASE_OPEN,			/* answered, an event stream or a streaming upload: none */
	HTTP_PHASE_IDLE				/* the request is over: the next one's headers */
} HttpPhase;

/* Set up the limits (at start); the connection limit to give libmicrohttpd. */
extern int	buildlog_http_limits_init(HttpWorker *h);

#ifdef MHD_VERSION				/* after <microhttpd.h> */
/* libmicrohttpd's accept policy: refuse a client over its connection cap. */
extern enum MHD_Result buildlog_http_accept_policy(void *cls, const struct sockaddr *addr,
												   socklen_t addrlen);
#endif

/* A connection opened or closed (from the connection notifier). */
extern void buildlog_http_conn_opened(struct MHD_Connection *conn, void **socket_context);
extern void buildlog_http_conn_closed(void **socket_context);

/* The request on conn moved to phase (its deadline changes). */
extern void buildlog_http_request_phase(struct MHD_Connection *conn, HttpPhase phase);

/* Is the client within its request rate?  False with a 429 in r. */
extern bool buildlog_http_rate_check(struct MHD_Connection *conn, HttpResponse *r);

/*
 * Count an event stream of conn's client (*client: its key for the
 * release, 0 when not counted); false over buildlog.http_max_streams_per_client.
 */
extern bool buildlog_http_stream_admit(struct MHD_Connection *conn, uint32 *client);
extern void buildlog_http_stream_release(uint32 client);

/*
 * Count a log answer of bytes about to be sent on conn, and give it a
 * deadline (64 kB/s at least after buildlog.http_timeout); false (a 503 to
 * send instead) past buildlog.http_max_answer_bytes in flight.
 */
extern bool buildlog_http_answer_admit(struct MHD_Connection *conn, int64 bytes);

/* One more event stream refused for want of room (counted for /metrics). */
extern void buildlog_http_stream_refused(void);

/* Close the connections past their deadline (at most once a second). */
extern void buildlog_http_limits_sweep(void);

/* The limits' counters, in Prometheus' text format. */
extern void buildlog_http_limits_metrics(StringInfo buf);

#endif							/* BUILDLOG_HTTP_LIMITS_H */
