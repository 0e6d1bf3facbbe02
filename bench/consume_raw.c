/*
 * consume_raw.c - drain RabbitMQ queues as fast as the broker delivers.
 *
 * The baseline for buildlog's drain workers: consume one or more queues on
 * one channel with basic.qos prefetch, ack with multiple=true every --batch
 * deliveries (or as soon as deliveries pause), no parsing.  Stops after
 * --count messages or when nothing arrived for --idle-ms, then prints
 *   consumed N messages in S s = R msg/s
 * where S runs from the first delivery to the last ack.
 *
 * The AMQP connection code is shared with tools/publish (tools/amqp_common.c).
 * Build: make -C bench (bin/consume_raw)
 * Usage: bin/consume_raw --help
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "amqp_common.h"
#include "common.h"

#define DEFAULT_QUEUE "reporting.jobs.logs"
#define MAX_QUEUES 64
#define ACK_FLUSH_MS 20			/* ack what we hold when deliveries pause */

const char tool_progname[] = "consume_raw";

static amqp_connection_state_t conn;

/* ack (multiple=true) every delivery up to tag */
static void
ack_through(uint64_t tag)
{
	if (amqp_basic_ack(conn, 1, tag, 1) != AMQP_STATUS_OK)
		die("basic.ack failed");
}

/* --help */
static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: consume_raw [OPTIONS]\n"
			"Consume queues as fast as possible (no parsing), ack in batches, report the rate.\n\n"
			"  --url URL        amqp://user:pass@host:port[/vhost] (default $BUILDLOG_AMQP_URL,\n"
			"                   else amqp://guest:guest@localhost:5672)\n"
			"  --queue NAME     queue to consume; repeat for several (default " DEFAULT_QUEUE ")\n"
			"  --prefetch N     basic.qos prefetch count per consumer, 1..65535 (default 1000)\n"
			"  --batch N        ack (multiple=true) every N deliveries (default 500); also acks\n"
			"                   whatever is held when deliveries pause for %d ms\n"
			"  --count N        stop after N messages (default 0 = no limit)\n"
			"  --idle-ms MS     stop when nothing arrived for MS ms (default 2000)\n"
			"  --dump FILE      append every body plus a newline to FILE ('-' = stdout)\n",
			ACK_FLUSH_MS);
}

int
main(int argc, char **argv)
{
	enum
	{
		O_URL = 256, O_QUEUE, O_PREFETCH, O_BATCH, O_COUNT, O_IDLE, O_DUMP, O_HELP
	};
	static const struct option longopts[] = {
		{"url", required_argument, NULL, O_URL},
		{"queue", required_argument, NULL, O_QUEUE},
		{"prefetch", required_argument, NULL, O_PREFETCH},
		{"batch", required_argument, NULL, O_BATCH},
		{"count", required_argument, NULL, O_COUNT},
		{"idle-ms", required_argument, NULL, O_IDLE},
		{"dump", required_argument, NULL, O_DUMP},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	const char *url = NULL;
	const char *queues[MAX_QUEUES];
	int			n_queues = 0,
				n_active,
				c,
				i;
	long		prefetch = 1000,
				batch = 500,
				idle_ms = 2000;
	long long	count = 0,
				n = 0,
				n_redelivered = 0,
				bytes = 0;
	const char *dump_path = NULL;
	FILE	   *dump = NULL;
	uint64_t	last_tag = 0;
	long		unacked = 0;
	double		t_first = 0,
				t_last_ack = 0,
				t_activity;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case O_URL:
				url = optarg;
				break;
			case O_QUEUE:
				if (n_queues == MAX_QUEUES)
					die("at most %d --queue options", MAX_QUEUES);
				queues[n_queues++] = optarg;
				break;
			case O_PREFETCH:
				prefetch = (long) parse_ll("prefetch", optarg, 1, 65535);
				break;
			case O_BATCH:
				batch = (long) parse_ll("batch", optarg, 1, 10000000);
				break;
			case O_COUNT:
				count = parse_ll("count", optarg, 0, LLONG_MAX);
				break;
			case O_IDLE:
				idle_ms = (long) parse_ll("idle-ms", optarg, 1, 86400000);
				break;
			case O_DUMP:
				dump_path = optarg;
				break;
			case 'h':
			case O_HELP:
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	no_arguments_left(argc, argv);
	url = broker_url(url);
	if (n_queues == 0)
		queues[n_queues++] = DEFAULT_QUEUE;
	if (batch > prefetch)
		fprintf(stderr, "consume_raw: warning: --batch %ld > --prefetch %ld: acks will wait for %d ms pauses\n",
				batch, prefetch, ACK_FLUSH_MS);
	if (dump_path)
	{
		dump = strcmp(dump_path, "-") == 0 ? stdout : fopen(dump_path, "ab");
		if (!dump)
			die("cannot open %s: %s", dump_path, strerror(errno));
	}

	conn = connect_broker(url);
	amqp_basic_qos(conn, 1, 0, (uint16_t) prefetch, 0);
	check_rpc(conn, "basic.qos");
	for (i = 0; i < n_queues; i++)
	{
		char		what[300];

		snprintf(what, sizeof what, "basic.consume on queue '%s'", queues[i]);
		amqp_basic_consume(conn, 1, amqp_cstring_bytes(queues[i]), amqp_empty_bytes,
						   0, 0, 0, amqp_empty_table);
		check_rpc(conn, what);
	}
	n_active = n_queues;
	t_activity = now_mono();

	for (;;)
	{
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		struct timeval tv;
		double		now;

		if (count && n >= count)
			break;
		if (unacked > 0)
		{
			tv.tv_sec = 0;
			tv.tv_usec = ACK_FLUSH_MS * 1000;
		}
		else
		{
			double		left = idle_ms / 1000.0 - (now_mono() - t_activity);

			if (left <= 0)
				break;
			if (left > 0.5)
				left = 0.5;
			tv.tv_sec = 0;
			tv.tv_usec = (suseconds_t) (left * 1e6) + 1;
		}
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL)
		{
			t_activity = now_mono();
			if (n == 0)
				t_first = t_activity;
			n++;
			bytes += (long long) env.message.body.len;
			if (env.redelivered)
				n_redelivered++;
			last_tag = env.delivery_tag;
			unacked++;
			if (dump)
			{
				fwrite(env.message.body.bytes, 1, env.message.body.len, dump);
				fputc('\n', dump);
			}
			amqp_destroy_envelope(&env);
			if (unacked >= batch || (count && n >= count))
			{
				ack_through(last_tag);
				unacked = 0;
				t_last_ack = now_mono();
			}
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
			r.library_error == AMQP_STATUS_TIMEOUT)
		{
			now = now_mono();
			if (unacked > 0)
			{
				ack_through(last_tag);
				unacked = 0;
				t_last_ack = now;
			}
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
			r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
		{
			/* a frame that is not a delivery: cancel, close, ... */
			amqp_frame_t f;
			int			st = amqp_simple_wait_frame(conn, &f);

			if (st != AMQP_STATUS_OK)
				die("reading from the broker: %s", amqp_error_string2(st));
			if (f.frame_type != AMQP_FRAME_METHOD)
				continue;
			die_if_closed(&f);
			if (f.payload.method.id == AMQP_BASIC_CANCEL_METHOD)
			{
				fprintf(stderr, "consume_raw: the broker cancelled a consumer (queue deleted?)\n");
				if (--n_active == 0)
					goto done;
			}
			continue;
		}
		die("consuming: %s", rpc_error(r));
	}
done:
	if (unacked > 0)
	{
		ack_through(last_tag);
		t_last_ack = now_mono();
	}
	close_broker(conn);
	if (dump && dump != stdout && fclose(dump) != 0)
		die("cannot write %s: %s", dump_path, strerror(errno));

	{
		double		s = n ? t_last_ack - t_first : 0;

		printf("consumed %lld messages in %.3f s = %.0f msg/s\n", n, s, s > 0 ? (double) n / s : 0.0);
		fflush(stdout);
		if (n)
			fprintf(stderr, "consume_raw: %lld bytes of bodies (%.1f MB/s), %lld redelivered\n",
					bytes, s > 0 ? (double) bytes / s / 1e6 : 0.0, n_redelivered);
	}
	return 0;
}
