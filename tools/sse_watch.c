/*
 * sse_watch.c - many EventSource-like watchers of buildlog's live logs.
 *
 * A test and benchmark client for GET /jobs/{id}/events: it opens --clients
 * connections over --jobs jobs (client i watches job first-job + i % jobs),
 * reads the Server-Sent Events (chunked or not), and behaves like a browser's
 * EventSource: when a connection drops before the end event it reconnects
 * with Last-Event-ID = the last id it got.  With --drop-fraction some clients
 * also close their connection on purpose mid-stream, --drops times each.
 *
 * It checks what the server promises: every part number once per client (a
 * second copy counts as a duplicate), no gap below the final part when the
 * end event arrives, each event's id equal to the set of numbers the client
 * holds (the durable cursor), and with --expect N exactly N part events per
 * client.  When a part's content starts with tools/publish's --timestamp
 * prefix "T<16 digits of us> " it records the latency from publish to
 * receipt.  With --hold S it only holds the connections open for S seconds
 * after all of them were answered (fan-out capacity).
 *
 * One thread, epoll, non-blocking sockets.  It raises its own open-file
 * limit to what it needs when the hard limit allows.
 *
 * Build: make -C tools (bin/sse_watch)
 * Usage: bin/sse_watch --help
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "content.h"				/* buf_t */

#define MAX_HEADER 16384
#define READ_SIZE 65536
#define LAST_NUMBER INT32_MAX	/* travis' "last" */
#define MAX_NUMBER 10000000		/* a bitmap beyond this is a bug */
#define Max2(a, b) ((a) > (b) ? (a) : (b))

const char tool_progname[] = "sse_watch";

static struct
{
	const char *host;
	int			port;
	long		clients;
	long		jobs;
	long long	first_job;
	long		expect;
	double		timeout;
	double		hold;
	double		drop_fraction;
	long		drops;
	long		drop_after;
	long		retry_ms;
	double		connect_rate;
	const char *ready_file;
	unsigned	seed;
	int			verbose;
}			opt;

enum cstate
{
	C_IDLE,						/* waiting to (re)connect */
	C_CONNECTING,
	C_HEADERS,
	C_BODY,
	C_DONE						/* end event received */
};

enum chstate
{
	CH_SIZE, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER
};

typedef struct
{
	int			idx;
	int			fd;
	enum cstate state;
	long long	job;
	double		next_connect;	/* C_IDLE: when */
	buf_t		hdr;			/* response headers so far */
	buf_t		body;			/* decoded body not yet parsed into events */
	int			chunked;
	enum chstate ch;
	long		chunk_left;
	char		chline[32];
	int			chline_len;
	char	   *last_id;		/* Last-Event-ID to send */
	unsigned char *seen;		/* seen[n]: part n received */
	long		seen_cap;
	int			seen_last;		/* part "last" received */
	long		distinct;
	long		prefix;			/* every number < prefix is seen */
	long		max_number;		/* highest number seen (below "last") */
	long		drops_left;
	long		drop_at;		/* drop when events_conn reaches it (0: never) */
	long		events_conn;	/* part events on this connection */
	int			answered;		/* got one 200 response at least */
	long		events;
	long		duplicates;
	long		cursor_bad;
	long		gaps_at_end;
} client_t;

static client_t *clients;
static int	epfd;
static unsigned rng;

/* totals */
static long n_answered, n_done, n_reconnects, n_drops, n_http_errors, n_conn_errors;
static long n_status[600];
static long long *lat_us;
static size_t n_lat, cap_lat;
static int	first_error_said;
static double next_scan;		/* the earliest reconnect due (connect_due) */

/* ------------------------------------------------------------- helpers */

/* append bytes to a buffer and keep it NUL-terminated (for strstr) */
static void
buf_add_z(buf_t *b, const char *s, size_t n)
{
	buf_add(b, s, n);
	buf_reserve(b, 1);
	b->p[b->len] = '\0';
}

/* drop the first n bytes of a buffer */
static void
buf_consume(buf_t *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	if (b->p)
		b->p[b->len] = '\0';
}

/* a small deterministic random number generator (xorshift32) */
static unsigned
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* raise the open-file limit to what K connections need, if allowed */
static void
raise_fd_limit(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	if ((long) rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && (long) rl.rlim_max < need)
		die("%ld connections need %ld open files; the hard limit is %ld (raise it: ulimit -Hn)",
			opt.clients, need, (long) rl.rlim_max);
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit(%ld): %s", need, strerror(errno));
}

/* when to drop the current connection on purpose (0: not this one) */
static void
plan_drop(client_t *c)
{
	c->events_conn = 0;
	c->drop_at = c->drops_left > 0 ? 1 + (long) (next_rand() % (unsigned) opt.drop_after) : 0;
}

/* ------------------------------------------------------------- connections */

/* close the connection; reconnect after delay_ms unless the stream ended */
static void
disconnect(client_t *c, long delay_ms)
{
	if (c->fd >= 0)
	{
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->hdr.len = 0;
	c->body.len = 0;
	if (c->state == C_DONE)
		return;
	c->state = C_IDLE;
	c->next_connect = now_mono() + delay_ms / 1000.0;
	if (c->next_connect < next_scan)
		next_scan = c->next_connect;
	n_reconnects++;
}

/* start a non-blocking connection */
static void
start_connect(client_t *c)
{
	struct sockaddr_in addr;
	struct epoll_event ev;
	int			one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s (open-file limit?)", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) opt.port);
	if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1)
		die("--host must be an IPv4 address: %s", opt.host);
	if (connect(c->fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 && errno != EINPROGRESS)
	{
		n_conn_errors++;
		close(c->fd);
		c->fd = -1;
		c->state = C_IDLE;
		c->next_connect = now_mono() + opt.retry_ms / 1000.0;
		if (c->next_connect < next_scan)
			next_scan = c->next_connect;
		return;
	}
	c->state = C_CONNECTING;
	ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
	ev.data.u32 = (uint32_t) c->idx;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* connected: send the request (it fits a fresh socket's buffer) */
static void
send_request(client_t *c)
{
	char		req[8192];
	int			n;
	struct epoll_event ev;
	int			err = 0;
	socklen_t	len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
	{
		n_conn_errors++;
		disconnect(c, opt.retry_ms);
		return;
	}
	n = snprintf(req, sizeof(req),
				 "GET /jobs/%lld/events HTTP/1.1\r\nHost: %s:%d\r\n"
				 "Accept: text/event-stream\r\nCache-Control: no-cache\r\n%s%s%s\r\n",
				 c->job, opt.host, opt.port,
				 c->last_id ? "Last-Event-ID: " : "", c->last_id ? c->last_id : "",
				 c->last_id ? "\r\n" : "");
	if (n >= (int) sizeof(req))
		die("client %d: Last-Event-ID too long for the request buffer", c->idx);
	if (write(c->fd, req, (size_t) n) != n)
	{
		n_conn_errors++;
		disconnect(c, opt.retry_ms);
		return;
	}
	c->state = C_HEADERS;
	c->chunked = 0;
	c->ch = CH_SIZE;
	c->chline_len = 0;
	plan_drop(c);
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.u32 = (uint32_t) c->idx;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* ------------------------------------------------------------- the cursor */

/* mark number n seen; false if it was already */
static int
mark_seen(client_t *c, long n)
{
	if (n == LAST_NUMBER)
	{
		if (c->seen_last)
			return 0;
		c->seen_last = 1;
		c->distinct++;
		return 1;
	}
	if (n < 0 || n > MAX_NUMBER)
		die("client %d: part number %ld out of the range this client tracks", c->idx, n);
	if (n >= c->seen_cap)
	{
		long		cap = Max2(n + 1, c->seen_cap * 2);

		c->seen = realloc(c->seen, (size_t) cap);
		if (c->seen == NULL)
			die("out of memory");
		memset(c->seen + c->seen_cap, 0, (size_t) (cap - c->seen_cap));
		c->seen_cap = cap;
	}
	if (c->seen[n])
		return 0;
	c->seen[n] = 1;
	c->distinct++;
	if (n > c->max_number)
		c->max_number = n;
	while (c->prefix < c->seen_cap && c->seen[c->prefix])
		c->prefix++;
	return 1;
}

/* the client's set as the server writes cursors: "0-41,44,46-50" */
static void
format_cursor(client_t *c, buf_t *out)
{
	char		tmp[48];
	long		n = 0;
	int			first = 1;

	out->len = 0;
	buf_add_z(out, "", 0);
	if (c->distinct - c->seen_last == c->prefix && c->prefix > 0)
	{
		/* no gap: the fast path */
		snprintf(tmp, sizeof(tmp), c->prefix == 1 ? "0" : "0-%ld", c->prefix - 1);
		buf_add_z(out, tmp, strlen(tmp));
		first = 0;
	}
	else
		while (n <= c->max_number && n < c->seen_cap)
		{
			long		lo;

			if (!c->seen[n])
			{
				n++;
				continue;
			}
			lo = n;
			while (n + 1 < c->seen_cap && c->seen[n + 1])
				n++;
			if (lo == n)
				snprintf(tmp, sizeof(tmp), "%s%ld", first ? "" : ",", lo);
			else
				snprintf(tmp, sizeof(tmp), "%s%ld-%ld", first ? "" : ",", lo, n);
			buf_add_z(out, tmp, strlen(tmp));
			first = 0;
			n++;
		}
	if (c->seen_last)
	{
		snprintf(tmp, sizeof(tmp), "%s%d", first ? "" : ",", LAST_NUMBER);
		buf_add_z(out, tmp, strlen(tmp));
	}
}

/* ------------------------------------------------------------- events */

/* the integer after "key": in a JSON text, or -1 */
static long
json_long(const char *data, const char *key)
{
	const char *p = strstr(data, key);

	if (p == NULL)
		return -1;
	p += strlen(key);
	if (!isdigit((unsigned char) *p))
		return -1;
	return strtol(p, NULL, 10);
}

/* one complete event (its lines, NUL-terminated) received at now_us */
static void
handle_event(client_t *c, char *block, long long now_us)
{
	char	   *id = NULL,
			   *event = NULL,
			   *data = NULL;
	char	   *save = NULL;

	for (char *line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		size_t		l = strlen(line);

		if (l > 0 && line[l - 1] == '\r')
			line[--l] = '\0';
		if (line[0] == ':')
			continue;			/* a comment: heartbeat */
		if (strncmp(line, "id: ", 4) == 0)
			id = line + 4;
		else if (strncmp(line, "event: ", 7) == 0)
			event = line + 7;
		else if (strncmp(line, "data: ", 6) == 0)
			data = line + 6;
	}
	if (id != NULL)
	{
		free(c->last_id);
		c->last_id = strdup(id);
	}
	if (event == NULL || data == NULL)
		return;					/* retry: and comments */
	if (strcmp(event, "part") == 0)
	{
		long		number = json_long(data, "\"number\":");
		const char *ts = strstr(data, "\"content\":\"T");
		static buf_t cur;

		if (number < 0)
			die("client %d: a part event without a number: %s", c->idx, data);
		c->events++;
		c->events_conn++;
		if (!mark_seen(c, number))
		{
			c->duplicates++;
			if (opt.verbose)
				fprintf(stderr, "client %d job %lld: part %ld twice\n", c->idx, c->job, number);
		}
		format_cursor(c, &cur);
		if (id == NULL || strcmp(id, cur.p) != 0)
		{
			c->cursor_bad++;
			if (opt.verbose || c->cursor_bad == 1)
				fprintf(stderr, "client %d job %lld: event id '%s', but the client holds '%s'\n",
						c->idx, c->job, id ? id : "(none)", cur.p);
		}
		if (ts != NULL)
		{
			ts += strlen("\"content\":\"T");
			if (strspn(ts, "0123456789") >= 16)
			{
				if (n_lat == cap_lat)
				{
					cap_lat = cap_lat ? cap_lat * 2 : 65536;
					lat_us = realloc(lat_us, cap_lat * sizeof(*lat_us));
					if (lat_us == NULL)
						die("out of memory");
				}
				lat_us[n_lat++] = now_us - strtoll(ts, NULL, 10);
			}
		}
	}
	else if (strcmp(event, "end") == 0)
	{
		/* every number up to the highest seen must be there */
		c->gaps_at_end = (c->max_number + 1) - (c->distinct - c->seen_last);
		c->state = C_DONE;
		n_done++;
	}
}

/* split the decoded body into events (blank-line separated) */
static void
parse_events(client_t *c, long long now_us)
{
	size_t		off = 0;
	char	   *p;

	if (c->body.p == NULL)
		return;
	while (c->state != C_DONE && (p = strstr(c->body.p + off, "\n\n")) != NULL)
	{
		size_t		n = (size_t) (p - (c->body.p + off)) + 2;

		p[0] = '\0';
		handle_event(c, c->body.p + off, now_us);
		off += n;
		if (c->drop_at > 0 && c->events_conn >= c->drop_at && c->state != C_DONE)
		{
			c->drops_left--;
			n_drops++;
			disconnect(c, 0);	/* on purpose: reconnect at once */
			return;
		}
	}
	if (c->state != C_DONE)
		buf_consume(&c->body, off);
}

/* body bytes from the socket: de-chunk them into c->body; false at the body's end */
static int
body_bytes(client_t *c, const char *s, size_t n)
{
	if (!c->chunked)
	{
		buf_add_z(&c->body, s, n);
		return 1;
	}
	while (n > 0)
	{
		switch (c->ch)
		{
			case CH_SIZE:
				if (*s == '\n')
				{
					c->chline[c->chline_len] = '\0';
					c->chunk_left = strtol(c->chline, NULL, 16);
					c->chline_len = 0;
					c->ch = c->chunk_left == 0 ? CH_TRAILER : CH_DATA;
					if (c->chunk_left == 0)
						return 0;	/* the last chunk */
				}
				else if (c->chline_len < (int) sizeof(c->chline) - 1)
					c->chline[c->chline_len++] = *s;
				s++, n--;
				break;
			case CH_DATA:
				{
					size_t		k = (size_t) c->chunk_left < n ? (size_t) c->chunk_left : n;

					buf_add_z(&c->body, s, k);
					s += k, n -= k;
					c->chunk_left -= (long) k;
					if (c->chunk_left == 0)
						c->ch = CH_DATA_CR;
				}
				break;
			case CH_DATA_CR:
			case CH_DATA_LF:
				if (*s == '\n')
					c->ch = CH_SIZE;
				s++, n--;
				break;
			case CH_TRAILER:
				return 0;
		}
	}
	return 1;
}

/* the response headers are in: 200 starts the stream, anything else retries */
static int
headers_done(client_t *c, size_t hlen)
{
	int			status = 0;
	const char *te;

	if (sscanf(c->hdr.p, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	if (status != 200)
	{
		n_http_errors++;
		if (status > 0 && status < 600)
			n_status[status]++;
		if (!first_error_said)
		{
			first_error_said = 1;
			fprintf(stderr, "sse_watch: client %d got HTTP %d (retrying): %.300s\n",
					c->idx, status, c->hdr.p);
		}
		disconnect(c, opt.retry_ms);
		return 0;
	}
	if (!c->answered)
	{
		c->answered = 1;
		n_answered++;
	}
	c->hdr.p[hlen] = '\0';
	te = strcasestr(c->hdr.p, "\r\ntransfer-encoding:");
	c->chunked = 0;
	if (te != NULL)
	{
		const char *eol = strstr(te + 2, "\r\n");
		const char *ch = strcasestr(te, "chunked");

		c->chunked = ch != NULL && eol != NULL && ch < eol;
	}
	c->state = C_BODY;
	return 1;
}

/* the socket is readable: headers, then events */
static void
on_readable(client_t *c)
{
	static char rbuf[READ_SIZE];

	for (;;)
	{
		ssize_t		n = read(c->fd, rbuf, sizeof(rbuf));
		long long	now_us = now_realtime_us();

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
		{
			/* the server closed it (or an error) before the end event */
			disconnect(c, opt.retry_ms);
			return;
		}
		if (c->state == C_HEADERS)
		{
			char	   *end;

			buf_add_z(&c->hdr, rbuf, (size_t) n);
			end = strstr(c->hdr.p, "\r\n\r\n");
			if (end == NULL)
			{
				if (c->hdr.len > MAX_HEADER)
					die("client %d: response headers over %d bytes", c->idx, MAX_HEADER);
				continue;
			}
			{
				size_t		hlen = (size_t) (end - c->hdr.p) + 4;
				size_t		rest = c->hdr.len - hlen;
				char	   *tail = malloc(rest + 1);

				memcpy(tail, c->hdr.p + hlen, rest);
				if (!headers_done(c, hlen))
				{
					free(tail);
					return;
				}
				if (!body_bytes(c, tail, rest))
				{
					free(tail);
					parse_events(c, now_us);
					disconnect(c, opt.retry_ms);
					return;
				}
				free(tail);
			}
		}
		else if (!body_bytes(c, rbuf, (size_t) n))
		{
			parse_events(c, now_us);
			disconnect(c, opt.retry_ms);
			return;
		}
		parse_events(c, now_us);
		if (c->state == C_DONE)
		{
			disconnect(c, 0);
			return;
		}
		if (c->fd < 0)
			return;				/* dropped on purpose */
	}
}

/* ------------------------------------------------------------- summary */

static int
cmp_ll(const void *a, const void *b)
{
	long long	x = *(const long long *) a,
				y = *(const long long *) b;

	return x < y ? -1 : x > y;
}

/* the q-quantile of the sorted latencies, in ms */
static double
quantile_ms(double q)
{
	size_t		i = (size_t) (q * (double) (n_lat - 1) + 0.5);

	return lat_us[i] / 1000.0;
}

/* print the summary; returns the exit status (0: every promise kept) */
static int
summary(double elapsed)
{
	long		events = 0,
				dups = 0,
				missing = 0,
				cursor_bad = 0,
				unfinished = 0;
	int			ok;

	for (long i = 0; i < opt.clients; i++)
	{
		client_t   *c = &clients[i];

		events += c->events;
		dups += c->duplicates;
		cursor_bad += c->cursor_bad;
		if (c->state != C_DONE && opt.hold == 0)
			unfinished++;
		if (c->state == C_DONE)
			missing += c->gaps_at_end;
		if (opt.expect > 0 && c->distinct < opt.expect)
			missing += opt.expect - c->distinct - (c->state == C_DONE ? c->gaps_at_end : 0);
		if (opt.verbose && (c->duplicates || c->gaps_at_end || (opt.expect > 0 && c->distinct != opt.expect)))
			fprintf(stderr, "client %ld job %lld: %ld distinct parts, %ld duplicates, %ld gaps\n",
					i, c->job, c->distinct, c->duplicates, c->gaps_at_end);
	}
	printf("clients %ld jobs %ld answered %ld ended %ld unfinished %ld events %ld duplicates %ld missing %ld "
		   "cursor_mismatches %ld reconnects %ld drops %ld http_errors %ld connect_errors %ld seconds %.2f\n",
		   opt.clients, opt.jobs, n_answered, n_done, unfinished, events, dups, missing, cursor_bad,
		   n_reconnects, n_drops, n_http_errors, n_conn_errors, elapsed);
	for (int s = 0; s < 600; s++)
		if (n_status[s])
			printf("http_status %d: %ld\n", s, n_status[s]);
	if (n_lat > 0)
	{
		qsort(lat_us, n_lat, sizeof(*lat_us), cmp_ll);
		printf("latency_ms n %zu p50 %.2f p90 %.2f p99 %.2f p999 %.2f max %.2f\n",
			   n_lat, quantile_ms(0.5), quantile_ms(0.9), quantile_ms(0.99), quantile_ms(0.999),
			   lat_us[n_lat - 1] / 1000.0);
	}
	fflush(stdout);
	if (opt.hold > 0)
		ok = n_answered == opt.clients && dups == 0 && cursor_bad == 0;
	else
		ok = unfinished == 0 && dups == 0 && missing == 0 && cursor_bad == 0;
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: sse_watch --port P [OPTIONS]\n"
			"Watch buildlog's GET /jobs/{id}/events with many EventSource-like clients.\n\n"
			"  --host ADDR          IPv4 address of the HTTP service (default 127.0.0.1)\n"
			"  --port P             its port (required)\n"
			"  --clients K          connections (default 10); client i watches job first-job + i %% jobs\n"
			"  --jobs M             jobs watched (default 1)\n"
			"  --first-job ID       first job id (default 1)\n"
			"  --expect N           part events each client must get (0 = not checked; default 0)\n"
			"  --timeout S          give up after S seconds (default 60)\n"
			"  --hold S             fan-out mode: once all clients are answered, hold S s, then stop\n"
			"  --drop-fraction F    fraction of clients that drop their connection on purpose (default 0)\n"
			"  --drops N            times each such client drops (default 3)\n"
			"  --drop-after E       a drop comes after 1..E part events of a connection (default 20)\n"
			"  --retry-ms MS        reconnect delay after a close by the server or an error (default 100)\n"
			"  --connect-rate R     new connections per second at the start, 0 = all at once (default 0)\n"
			"  --ready-file PATH    created once every client got its first 200 response\n"
			"  --seed S             seed of the drop decisions (default 1)\n"
			"  --verbose            say every duplicate and gap\n\n"
			"Prints one summary line (clients, events, duplicates, missing, cursor mismatches,\n"
			"reconnects...) and, for parts published with tools/publish --timestamp, the\n"
			"latency percentiles from publish to receipt.  Exit status 0 only when every client\n"
			"got the end event, every part once, no gap, and ids equal to its cursor\n"
			"(with --hold: when every client was answered).\n");
}

/* parse the options into opt */
static void
parse_options(int argc, char **argv)
{
	enum
	{
		O_HOST = 256, O_PORT, O_CLIENTS, O_JOBS, O_FIRST, O_EXPECT, O_TIMEOUT, O_HOLD,
		O_DROPF, O_DROPS, O_DROPA, O_RETRY, O_CRATE, O_READY, O_SEED, O_VERBOSE, O_HELP
	};
	static const struct option longopts[] = {
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"clients", required_argument, NULL, O_CLIENTS},
		{"jobs", required_argument, NULL, O_JOBS},
		{"first-job", required_argument, NULL, O_FIRST},
		{"expect", required_argument, NULL, O_EXPECT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"hold", required_argument, NULL, O_HOLD},
		{"drop-fraction", required_argument, NULL, O_DROPF},
		{"drops", required_argument, NULL, O_DROPS},
		{"drop-after", required_argument, NULL, O_DROPA},
		{"retry-ms", required_argument, NULL, O_RETRY},
		{"connect-rate", required_argument, NULL, O_CRATE},
		{"ready-file", required_argument, NULL, O_READY},
		{"seed", required_argument, NULL, O_SEED},
		{"verbose", no_argument, NULL, O_VERBOSE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	int			o;

	opt.host = "127.0.0.1";
	opt.clients = 10;
	opt.jobs = 1;
	opt.first_job = 1;
	opt.timeout = 60;
	opt.drops = 3;
	opt.drop_after = 20;
	opt.retry_ms = 100;
	opt.seed = 1;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1)
	{
		switch (o)
		{
			case O_HOST: opt.host = optarg; break;
			case O_PORT: opt.port = (int) parse_ll("port", optarg, 1, 65535); break;
			case O_CLIENTS: opt.clients = (long) parse_ll("clients", optarg, 1, 1000000); break;
			case O_JOBS: opt.jobs = (long) parse_ll("jobs", optarg, 1, 1000000); break;
			case O_FIRST: opt.first_job = parse_ll("first-job", optarg, 1, LLONG_MAX / 2); break;
			case O_EXPECT: opt.expect = (long) parse_ll("expect", optarg, 0, MAX_NUMBER); break;
			case O_TIMEOUT: opt.timeout = parse_double("timeout", optarg, 0.1, 86400); break;
			case O_HOLD: opt.hold = parse_double("hold", optarg, 0, 86400); break;
			case O_DROPF: opt.drop_fraction = parse_double("drop-fraction", optarg, 0, 1); break;
			case O_DROPS: opt.drops = (long) parse_ll("drops", optarg, 0, 1000000); break;
			case O_DROPA: opt.drop_after = (long) parse_ll("drop-after", optarg, 1, 1000000); break;
			case O_RETRY: opt.retry_ms = (long) parse_ll("retry-ms", optarg, 0, 60000); break;
			case O_CRATE: opt.connect_rate = parse_double("connect-rate", optarg, 0, 1e7); break;
			case O_READY: opt.ready_file = optarg; break;
			case O_SEED: opt.seed = (unsigned) parse_ll("seed", optarg, 1, UINT32_MAX); break;
			case O_VERBOSE: opt.verbose = 1; break;
			case O_HELP: usage(stdout); exit(0);
			default: usage(stderr); exit(2);
		}
	}
	no_arguments_left(argc, argv);
	if (opt.port == 0)
		die("--port is required (see --help)");
}

/*
 * Connect the clients whose time came (the first connections at most
 * --connect-rate per second); the wait until the next is due, in ms.
 */
static int
connect_due(double now, double start, long *started)
{
	double		next = 1e18;

	if (now < next_scan)
		return (int) ((next_scan - now) * 1000) + 1;
	for (long i = 0; i < opt.clients; i++)
	{
		client_t   *c = &clients[i];

		if (c->state != C_IDLE)
			continue;
		if (c->next_connect > now)
		{
			if (c->next_connect < next)
				next = c->next_connect;
			continue;
		}
		if (c->next_connect == 0)
		{
			/* a first connection */
			if (opt.connect_rate > 0 && *started >= (long) ((now - start) * opt.connect_rate) + 1)
			{
				if (now + 1.0 / opt.connect_rate < next)
					next = now + 1.0 / opt.connect_rate;
				continue;
			}
			(*started)++;
		}
		start_connect(c);
	}
	next_scan = next;
	return next > now + 1 ? 1000 : (int) ((next - now) * 1000) + 1;
}

int
main(int argc, char **argv)
{
	struct epoll_event *evs;
	double		start,
				all_answered_at = 0;
	long		started = 0;
	int			rc;

	parse_options(argc, argv);
	raise_fd_limit(opt.clients + 64);
	rng = opt.seed;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	clients = calloc((size_t) opt.clients, sizeof(client_t));
	evs = calloc(1024, sizeof(*evs));
	if (clients == NULL || evs == NULL)
		die("out of memory");
	for (long i = 0; i < opt.clients; i++)
	{
		client_t   *c = &clients[i];

		c->idx = (int) i;
		c->fd = -1;
		c->job = opt.first_job + i % opt.jobs;
		c->max_number = -1;
		c->drops_left = (double) (next_rand() % 1000000) / 1e6 < opt.drop_fraction ? opt.drops : 0;
	}
	start = now_mono();
	for (;;)
	{
		double		now = now_mono();
		int			wait_ms = connect_due(now, start, &started);
		int			n;

		if (opt.hold == 0 && n_done == opt.clients)
			break;
		if (now - start > opt.timeout)
		{
			fprintf(stderr, "sse_watch: timed out after %.0f s: %ld of %ld clients got the end event, %ld answered\n",
					opt.timeout, n_done, opt.clients, n_answered);
			break;
		}
		if (n_answered == opt.clients && all_answered_at == 0)
		{
			all_answered_at = now;
			if (opt.ready_file)
			{
				FILE	   *f = fopen(opt.ready_file, "w");

				if (f == NULL)
					die("cannot create %s: %s", opt.ready_file, strerror(errno));
				fprintf(f, "%ld\n", n_answered);
				fclose(f);
			}
			fprintf(stderr, "sse_watch: all %ld clients answered after %.2f s\n", opt.clients, now - start);
		}
		if (opt.hold > 0 && all_answered_at > 0 && now - all_answered_at >= opt.hold)
			break;
		n = epoll_wait(epfd, evs, 1024, wait_ms < 200 ? wait_ms : 200);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
		{
			client_t   *c = &clients[evs[i].data.u32];

			if (c->fd < 0)
				continue;
			if (c->state == C_CONNECTING)
			{
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					send_request(c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				on_readable(c);
		}
	}
	rc = summary(now_mono() - start);
	return rc;
}
