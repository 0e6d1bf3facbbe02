/*
 * http_load.c - load client of the HTTP ingest benchmark (bench/http_ingest.sh).
 *
 *   http_load --port P --tokens FILE --mode batch --clients 50 --requests R --parts B --size 200
 *   http_load --port P --tokens FILE --mode stream --clients 200 --bytes N --chunk 4096
 *
 * One process, non-blocking sockets and poll(): every client is one
 * keep-alive HTTP/1.1 connection to 127.0.0.1:P.  batch: client c POSTs R
 * NDJSON batches of B parts of SIZE bytes to /jobs/<job c>/parts, one after
 * the other, each answered 200 before the next.  stream: client c sends N
 * bytes of log lines in CHUNK-byte chunks of one chunked POST
 * /jobs/<job c>/stream as fast as the server reads them, then ends it.
 * FILE has one "job token" line per client (client c uses line c).  Prints
 * "<clients> clients <requests> requests <parts> parts <bytes> bytes <seconds> s"
 * and exits 1 if any answer was not 200.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>

#include "common.h"

const char	tool_progname[] = "http_load";

typedef struct Client
{
	int			fd;
	long long	job;
	char		token[256];
	char	   *out;			/* what is being sent */
	size_t		outlen, outoff;
	char		in[8192];
	size_t		inlen;
	long long	sent_requests;	/* batch: requests answered */
	long long	stream_sent;	/* stream: body bytes sent */
	int			state;			/* 0 sending, 1 reading, 2 done */
} Client;

static int	port, clients = 50, requests = 100, parts = 20, size = 200, chunk = 4096;
static long long bytes_per_stream = 1 << 20;
static int	stream_mode;
static char *part_text;			/* size bytes of printable ASCII */
static char *chunk_text;		/* chunk bytes of log lines */
static long long total_parts, total_bytes, total_requests;
static int	failures;

/* Connect client c (non-blocking). */
static void
connect_client(Client *c)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &a, sizeof(a)) != 0)
		die("connect: %s", strerror(errno));
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

/* The next batch request of client c into c->out. */
static void
next_batch(Client *c)
{
	size_t		cap = (size_t) parts * (size + 96) + 512;
	char	   *body = malloc(cap);
	size_t		len = 0;
	long long	first = c->sent_requests * parts;

	for (int i = 0; i < parts; i++)
		len += snprintf(body + len, cap - len, "{\"id\":%lld,\"number\":%lld,\"log\":\"%s\"}\n",
						c->job, first + i, part_text);
	free(c->out);
	c->out = malloc(len + 1024);
	c->outlen = snprintf(c->out, 1024, "POST /jobs/%lld/parts HTTP/1.1\r\nHost: bench\r\n"
						 "Authorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\n"
						 "Content-Length: %zu\r\n\r\n", c->job, c->token, len);
	memcpy(c->out + c->outlen, body, len);
	c->outlen += len;
	c->outoff = 0;
	c->state = 0;
	c->inlen = 0;
	free(body);
}

/* The stream's next piece into c->out: headers, a chunk, or the end. */
static void
next_stream_piece(Client *c)
{
	long long	left = bytes_per_stream - c->stream_sent;
	size_t		n = left < chunk ? (size_t) left : (size_t) chunk;

	free(c->out);
	c->out = malloc(chunk + 1024);
	c->outoff = 0;
	if (c->stream_sent == 0 && c->state != 3)
	{
		c->outlen = snprintf(c->out, 1024, "POST /jobs/%lld/stream HTTP/1.1\r\nHost: bench\r\n"
							 "Authorization: Bearer %s\r\nContent-Type: text/plain\r\n"
							 "Transfer-Encoding: chunked\r\n\r\n", c->job, c->token);
		c->state = 3;			/* headers queued */
		return;
	}
	if (n == 0)
	{
		c->outlen = snprintf(c->out, 16, "0\r\n\r\n");
		c->state = 4;			/* the end queued */
		return;
	}
	c->outlen = snprintf(c->out, 32, "%zx\r\n", n);
	memcpy(c->out + c->outlen, chunk_text, n);
	c->outlen += n;
	memcpy(c->out + c->outlen, "\r\n", 2);
	c->outlen += 2;
	c->stream_sent += n;
	c->state = 3;
}

/* A complete answer in c->in?  Returns its status (0: not yet). */
static int
answer_status(Client *c, long long *stored_parts)
{
	char	   *end;
	char	   *cl;
	size_t		hlen;
	long		blen;
	int			status;

	c->in[c->inlen] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	if (end == NULL)
		return 0;
	hlen = end + 4 - c->in;
	cl = strcasestr(c->in, "Content-Length:");
	blen = cl && cl < end ? atol(cl + 15) : 0;
	if (c->inlen < hlen + blen)
		return 0;
	status = atoi(c->in + 9);
	if (status != 200)
		fprintf(stderr, "http_load: job %lld: %.*s\n", c->job, (int) (hlen + blen), c->in);
	else
	{
		char	   *p = strstr(c->in + hlen, "\"parts\":");

		*stored_parts = p ? atoll(p + 8) : 0;
	}
	return status;
}

/* Send what can be sent; then read the answer. */
static void
progress(Client *c, short revents)
{
	if ((revents & POLLOUT) && c->outoff < c->outlen)
	{
		ssize_t		w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (w < 0 && errno != EAGAIN)
			die("write: %s", strerror(errno));
		if (w > 0)
			c->outoff += w;
		if (c->outoff == c->outlen)
		{
			if (!stream_mode)
				c->state = 1;
			else if (c->state == 4)
				c->state = 1;
			else
				next_stream_piece(c);
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR))
	{
		ssize_t		r = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
		long long	stored = 0;
		int			status;

		if (r <= 0 && !(r < 0 && errno == EAGAIN))
			die("job %lld: connection closed (%s)", c->job, r == 0 ? "EOF" : strerror(errno));
		if (r > 0)
			c->inlen += r;
		if ((status = answer_status(c, &stored)) == 0)
			return;
		if (status != 200)
			failures++;
		total_parts += stored;
		total_requests++;
		c->sent_requests++;
		if (stream_mode || c->sent_requests == requests)
		{
			c->state = 2;
			close(c->fd);
		}
		else
			next_batch(c);
	}
}

int
main(int argc, char **argv)
{
	static struct option opts[] = {
		{"port", 1, 0, 'p'}, {"tokens", 1, 0, 't'}, {"mode", 1, 0, 'm'},
		{"clients", 1, 0, 'c'}, {"requests", 1, 0, 'r'}, {"parts", 1, 0, 'n'},
		{"size", 1, 0, 's'}, {"bytes", 1, 0, 'b'}, {"chunk", 1, 0, 'k'}, {0, 0, 0, 0}
	};
	const char *tokens = NULL;
	Client	   *cs;
	struct pollfd *pfd;
	FILE	   *f;
	double		t0;
	int			o;
	int			open_clients;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (o)
		{
			case 'p': port = (int) parse_ll("port", optarg, 1, 65535); break;
			case 't': tokens = optarg; break;
			case 'm': stream_mode = strcmp(optarg, "stream") == 0; break;
			case 'c': clients = (int) parse_ll("clients", optarg, 1, 10000); break;
			case 'r': requests = (int) parse_ll("requests", optarg, 1, 100000000); break;
			case 'n': parts = (int) parse_ll("parts", optarg, 1, 10000); break;
			case 's': size = (int) parse_ll("size", optarg, 1, 1000000); break;
			case 'b': bytes_per_stream = parse_ll("bytes", optarg, 0, 1LL << 40); break;
			case 'k': chunk = (int) parse_ll("chunk", optarg, 1, 1 << 20); break;
			default: die("unknown option");
		}
	no_arguments_left(argc, argv);
	if (port == 0 || tokens == NULL)
		die("--port and --tokens are required");
	part_text = malloc(size + 1);
	for (int i = 0; i < size; i++)
	{
		static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789$ -=+:.,";

		part_text[i] = i % 64 == 63 ? ' ' : letters[i % (sizeof(letters) - 1)];
	}
	part_text[size] = '\0';
	chunk_text = malloc(chunk);
	for (int i = 0; i < chunk; i++)
	{
		static const char line[] = "make[2]: Building CXX object src/x.cc.o ";

		chunk_text[i] = i % 100 == 99 ? '\n' : line[i % (sizeof(line) - 1)];
	}
	cs = calloc(clients, sizeof(Client));
	pfd = calloc(clients, sizeof(struct pollfd));
	if ((f = fopen(tokens, "r")) == NULL)
		die("%s: %s", tokens, strerror(errno));
	for (int i = 0; i < clients; i++)
		if (fscanf(f, "%lld %255s", &cs[i].job, cs[i].token) != 2)
			die("%s: fewer than %d \"job token\" lines", tokens, clients);
	fclose(f);
	t0 = now_mono();
	for (int i = 0; i < clients; i++)
	{
		connect_client(&cs[i]);
		if (stream_mode)
			next_stream_piece(&cs[i]);
		else
			next_batch(&cs[i]);
	}
	open_clients = clients;
	while (open_clients > 0)
	{
		int			n = 0;
		int		   *idx = alloca(sizeof(int) * clients);

		for (int i = 0; i < clients; i++)
		{
			if (cs[i].state == 2)
				continue;
			pfd[n].fd = cs[i].fd;
			pfd[n].events = POLLIN | (cs[i].outoff < cs[i].outlen ? POLLOUT : 0);
			idx[n++] = i;
		}
		if (poll(pfd, n, 60000) <= 0)
			die("no progress for 60 s");
		for (int k = 0; k < n; k++)
			if (pfd[k].revents)
				progress(&cs[idx[k]], pfd[k].revents);
		open_clients = 0;
		for (int i = 0; i < clients; i++)
			open_clients += cs[i].state != 2;
	}
	for (int i = 0; i < clients; i++)
		total_bytes += stream_mode ? cs[i].stream_sent : (long long) requests * parts * size;
	printf("%d clients %lld requests %lld parts %lld bytes %.3f s\n", clients, total_requests,
		   total_parts, total_bytes, now_mono() - t0);
	return failures > 0;
}
