/*-------------------------------------------------------------------------
 * limits.c
 *	  The HTTP service's defences against bad and abusive clients.
 *
 * - Connections per client address (buildlog.http_max_connections_per_client):
 *	 libmicrohttpd's accept policy refuses one more: the socket is closed
 *	 at once, before anything is read, so a flood costs one accept and
 *	 close each (a browser's EventSource retries such a network error).
 * - Event streams per client address (buildlog.http_max_streams_per_client):
 *	 one more answers 429; and streams never take the last tenth of the
 *	 connection limit (at least 8), so requests and health checks always
 *	 find room (503 for a stream over that share).
 * - Log answers sent from a reader's file (buildlog.http_max_answer_bytes):
 *	 the bytes being sent, all clients together, stay under the cap (503
 *	 past it), and each answer must go at 64 kB/s at least after
 *	 buildlog.http_timeout, so clients that read nothing cannot pin the
 *	 readers' temporary files.
 * - Requests per client address (buildlog.http_rate_limit and
 *	 buildlog.http_rate_burst): a token bucket per address, checked when a
 *	 request's headers are in; over it, 429 problem+json with Retry-After.
 * - Slow clients (slowloris): libmicrohttpd's timeout only measures
 *	 inactivity, so a client that trickles one byte every few seconds would
 *	 hold its connection for ever.  Here every connection gets a deadline:
 *	 its request headers must be complete buildlog.http_timeout after the
 *	 connection opened (or after its previous request ended), and a bounded
 *	 upload's body buildlog.http_timeout after its headers.  A sweep once a
 *	 second shuts down the sockets past their deadline; libmicrohttpd then
 *	 closes them.  Event streams and streaming uploads have no deadline
 *	 (they stay open while the job runs; heartbeats and the inactivity
 *	 timeout cover them).
 * - The worker's open-file limit: each connection is a descriptor on top
 *	 of the files PostgreSQL itself may open (max_safe_fds), so the soft
 *	 limit is raised as far as the hard one allows, and the connection
 *	 limit is lowered (said once) when even the hard limit is too low.
 *
 * Every callback here runs on the worker's one thread inside MHD_run();
 * none raises an ERROR (allocations that may fail return NULL).
 * The counters are the worker process's own (reset when it restarts; the
 * Prometheus counters of /metrics tolerate that).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "lib/ilist.h"
#include "storage/fd.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http/limits.h"

#define FD_RESERVE		64		/* descriptors kept for the worker's own use */
#define ANSWER_MIN_RATE	(64 * 1024) /* bytes/s a log answer must at least go at */
#define SWEEP_MS		1000

/* What the worker knows about one client address. */
typedef struct HttpClient
{
	uint32		addr;			/* hash key: IPv4 address, network order */
	int			connections;	/* open now */
	int			streams;		/* event streams open now */
	double		tokens;			/* the request bucket */
	TimestampTz refilled;		/* when tokens was last brought up to date */
} HttpClient;

/* One open connection (libmicrohttpd's socket context). */
typedef struct HttpConn
{
	dlist_node	node;
	struct MHD_Connection *conn;
	uint32		addr;
	int			fd;
	TimestampTz deadline;		/* 0: none */
	int64		answer_bytes;	/* of the file answer being sent, or 0 */
} HttpConn;

static HTAB *clients = NULL;
static dlist_head conns = DLIST_STATIC_INIT(conns);
static int	connection_limit = 0;
static TimestampTz next_sweep = 0;

static uint64 refused_connections = 0;
static uint64 rate_limited = 0;
static uint64 slow_closed = 0;
static uint64 streams_refused = 0;
static uint64 answers_refused = 0;
static uint64 answers_slow_closed = 0;
static int64 answer_bytes = 0;	/* of the file answers being sent now */

/* The IPv4 address of a socket address (0 for another family). */
static uint32
address_key(const struct sockaddr *sa)
{
	if (sa != NULL && sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *) sa)->sin_addr.s_addr;
	return 0;
}

/* The client entry of an address, created if need be; NULL when out of memory. */
static HttpClient *
client_of(uint32 addr, bool create)
{
	bool		found;
	HttpClient *c = hash_search(clients, &addr, create ? HASH_ENTER_NULL : HASH_FIND, &found);

	if (c != NULL && create && !found)
	{
		c->connections = 0;
		c->streams = 0;
		c->tokens = buildlog_http_rate_burst;
		c->refilled = GetCurrentTimestamp();
	}
	return c;
}

/*
 * Raise the soft open-file limit so that the connection limit fits beside
 * PostgreSQL's own files; the connection limit libmicrohttpd gets.
 */
static int
fit_fd_limit(const char *name)
{
	struct rlimit rl;
	rlim_t		need = (rlim_t) buildlog_http_max_connections + max_safe_fds + FD_RESERVE;
	int			limit = buildlog_http_max_connections;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return limit;
	if (rl.rlim_cur < need)
	{
		rlim_t		old = rl.rlim_cur;

		rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur < need)
	{
		limit = Max((int) rl.rlim_cur - max_safe_fds - FD_RESERVE, 1);
		ereport(WARNING,
				(errmsg("%s: serving at most %d connections, not buildlog.http_max_connections = %d",
						name, limit, buildlog_http_max_connections),
				 errdetail("The open-file limit of the worker is %lu; %d connections need %lu beside PostgreSQL's own %d files.",
						   (unsigned long) rl.rlim_cur, buildlog_http_max_connections,
						   (unsigned long) need, max_safe_fds),
				 errhint("Raise the hard limit of open files of the postmaster (ulimit -Hn, LimitNOFILE= in systemd) to at least %lu.",
						 (unsigned long) need)));
	}
	return limit;
}

int
buildlog_http_limits_init(HttpWorker *h)
{
	HASHCTL		ctl;

	if (clients != NULL)
		return connection_limit;	/* a retry to listen */
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(HttpClient);
	ctl.hcxt = AllocSetContextCreate(TopMemoryContext, "buildlog http clients",
									 ALLOCSET_DEFAULT_SIZES);
	clients = hash_create("buildlog http clients", 1024, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	connection_limit = fit_fd_limit(h->w.name);
	return connection_limit;
}

enum MHD_Result
buildlog_http_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	HttpClient *c;

	if (buildlog_http_max_connections_per_client <= 0)
		return MHD_YES;
	c = client_of(address_key(addr), false);
	if (c != NULL && c->connections >= buildlog_http_max_connections_per_client)
	{
		refused_connections++;
		return MHD_NO;
	}
	return MHD_YES;
}

/* A connection's time to deliver its next request headers. */
static TimestampTz
header_deadline(void)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), buildlog_http_timeout_s * 1000);
}

void
buildlog_http_conn_opened(struct MHD_Connection *conn, void **socket_context)
{
	const union MHD_ConnectionInfo *addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	HttpConn   *hc = malloc(sizeof(HttpConn));
	HttpClient *c;

	*socket_context = hc;
	if (hc == NULL)
		return;					/* out of memory: no deadline, not counted */
	hc->conn = conn;
	hc->addr = address_key(addr ? addr->client_addr : NULL);
	hc->fd = fd ? fd->connect_fd : -1;
	hc->deadline = header_deadline();
	hc->answer_bytes = 0;
	dlist_push_tail(&conns, &hc->node);
	c = client_of(hc->addr, true);
	if (c != NULL)
		c->connections++;
}

void
buildlog_http_conn_closed(void **socket_context)
{
	HttpConn   *hc = (HttpConn *) *socket_context;
	HttpClient *c;

	if (hc == NULL)
		return;
	c = client_of(hc->addr, false);
	if (c != NULL && c->connections > 0)
		c->connections--;
	answer_bytes -= hc->answer_bytes;
	dlist_delete(&hc->node);
	free(hc);
	*socket_context = NULL;
}

/* The bookkeeping of a connection (NULL if it has none). */
static HttpConn *
conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? (HttpConn *) info->socket_context : NULL;
}

void
buildlog_http_request_phase(struct MHD_Connection *conn, HttpPhase phase)
{
	HttpConn   *hc = conn_of(conn);

	if (hc == NULL)
		return;
	if (phase == HTTP_PHASE_IDLE)
	{
		answer_bytes -= hc->answer_bytes;	/* its answer was sent */
		hc->answer_bytes = 0;
	}
	if (phase == HTTP_PHASE_BODY)
		hc->deadline = header_deadline();	/* the body: as long again */
	else if (phase == HTTP_PHASE_OPEN)
		hc->deadline = 0;
	else
		hc->deadline = header_deadline();	/* the next request's headers */
}

bool
buildlog_http_rate_check(struct MHD_Connection *conn, HttpResponse *r)
{
	HttpConn   *hc;
	HttpClient *c;
	TimestampTz now;
	double		rate = buildlog_http_rate_limit;
	double		burst = Max(buildlog_http_rate_burst, 1);

	if (rate <= 0)
		return true;
	hc = conn_of(conn);
	if (hc == NULL || (c = client_of(hc->addr, true)) == NULL)
		return true;
	now = GetCurrentTimestamp();
	c->tokens = Min(burst, c->tokens + (double) (now - c->refilled) / 1e6 * rate);
	c->refilled = now;
	if (c->tokens >= 1)
	{
		c->tokens -= 1;
		return true;
	}
	rate_limited++;
	{
		char		retry[16];

		snprintf(retry, sizeof(retry), "%d", (int) Max(ceil((1 - c->tokens) / rate), 1));
		buildlog_http_add_header(r, "Retry-After", retry);
		buildlog_http_problem(r, MHD_HTTP_TOO_MANY_REQUESTS, "Too Many Requests",
							  psprintf("This client sent more than %d requests per second (burst %d); try again after %s s.",
									   buildlog_http_rate_limit, buildlog_http_rate_burst, retry));
	}
	return false;
}

bool
buildlog_http_answer_admit(struct MHD_Connection *conn, int64 bytes)
{
	HttpConn   *hc = conn_of(conn);
	int64		cap = (int64) buildlog_http_max_answer_bytes * 1024;

	if (hc == NULL)
		return true;			/* out of memory at its start: not counted */
	if (answer_bytes > 0 && answer_bytes + bytes > cap)
	{
		answers_refused++;
		return false;
	}
	answer_bytes += bytes;
	hc->answer_bytes = bytes;
	/* at least ANSWER_MIN_RATE, after http_timeout: a trickling reader is cut */
	hc->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   (buildlog_http_timeout_s + bytes / ANSWER_MIN_RATE) * 1000);
	return true;
}

void
buildlog_http_stream_refused(void)
{
	streams_refused++;
}

bool
buildlog_http_stream_admit(struct MHD_Connection *conn, uint32 *client)
{
	HttpConn   *hc = conn_of(conn);
	HttpClient *c;

	*client = 0;
	if (hc == NULL || (c = client_of(hc->addr, true)) == NULL)
		return true;			/* out of memory: not counted */
	if (buildlog_http_max_streams_per_client > 0 &&
		c->streams >= buildlog_http_max_streams_per_client)
	{
		streams_refused++;
		return false;
	}
	c->streams++;
	*client = hc->addr;
	return true;
}

void
buildlog_http_stream_release(uint32 client)
{
	HttpClient *c = client != 0 ? client_of(client, false) : NULL;

	if (c != NULL && c->streams > 0)
		c->streams--;
}

void
buildlog_http_limits_sweep(void)
{
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	iter;
	HASH_SEQ_STATUS seq;
	HttpClient *c;
	double		full_after_us;

	if (now < next_sweep)
		return;
	next_sweep = TimestampTzPlusMilliseconds(now, SWEEP_MS);
	dlist_foreach(iter, &conns)
	{
		HttpConn   *hc = dlist_container(HttpConn, node, iter.cur);

		if (hc->deadline != 0 && hc->deadline < now && hc->fd >= 0)
		{
			/* libmicrohttpd sees the end of the socket and closes it */
			shutdown(hc->fd, SHUT_RDWR);
			hc->deadline = 0;
			if (hc->answer_bytes > 0)
				answers_slow_closed++;
			else
				slow_closed++;
		}
	}
	/* forget addresses with no connection and a full bucket */
	full_after_us = buildlog_http_rate_limit > 0 ?
		(double) buildlog_http_rate_burst / buildlog_http_rate_limit * 1e6 : 0;
	hash_seq_init(&seq, clients);
	while ((c = hash_seq_search(&seq)) != NULL)
		if (c->connections == 0 && (double) (now - c->refilled) >= full_after_us)
			hash_search(clients, &c->addr, HASH_REMOVE, NULL);
}

void
buildlog_http_limits_metrics(StringInfo buf)
{
	appendStringInfo(buf, "# HELP buildlog_http_refused_connections_total Connections refused at accept: the client had buildlog.http_max_connections_per_client open.\n"
					 "# TYPE buildlog_http_refused_connections_total counter\n"
					 "buildlog_http_refused_connections_total " UINT64_FORMAT "\n", refused_connections);
	appendStringInfo(buf, "# HELP buildlog_http_rate_limited_total Requests answered 429: over the client's buildlog.http_rate_limit.\n"
					 "# TYPE buildlog_http_rate_limited_total counter\n"
					 "buildlog_http_rate_limited_total " UINT64_FORMAT "\n", rate_limited);
	appendStringInfo(buf, "# HELP buildlog_http_slow_closed_total Connections closed for not sending their request within buildlog.http_timeout.\n"
					 "# TYPE buildlog_http_slow_closed_total counter\n"
					 "buildlog_http_slow_closed_total " UINT64_FORMAT "\n", slow_closed);
	appendStringInfo(buf, "# HELP buildlog_http_refused_streams_total Event streams answered 429 or 503: over buildlog.http_max_streams_per_client, or the service's share of streams full.\n"
					 "# TYPE buildlog_http_refused_streams_total counter\n"
					 "buildlog_http_refused_streams_total " UINT64_FORMAT "\n", streams_refused);
	appendStringInfo(buf, "# HELP buildlog_http_refused_answers_total Log reads answered 503: their answer would have taken the bytes in flight past buildlog.http_max_answer_bytes.\n"
					 "# TYPE buildlog_http_refused_answers_total counter\n"
					 "buildlog_http_refused_answers_total " UINT64_FORMAT "\n", answers_refused);
	appendStringInfo(buf, "# HELP buildlog_http_slow_answers_closed_total Log answers cut for going slower than 64 kB/s after buildlog.http_timeout.\n"
					 "# TYPE buildlog_http_slow_answers_closed_total counter\n"
					 "buildlog_http_slow_answers_closed_total " UINT64_FORMAT "\n", answers_slow_closed);
	appendStringInfo(buf, "# HELP buildlog_http_answer_bytes Bytes of log answers being sent now (their temporary files).\n"
					 "# TYPE buildlog_http_answer_bytes gauge\n"
					 "buildlog_http_answer_bytes " INT64_FORMAT "\n", answer_bytes);
}
