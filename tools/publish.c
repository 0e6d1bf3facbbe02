/*
 * publish.c - publish travis-worker style log-part messages to RabbitMQ.
 *
 * A test, demo and benchmark load generator for buildlog.  It publishes the
 * log parts of N jobs (M parts each, `size` content bytes per part) to a
 * queue or to an exchange (routing key = job id), optionally rate limited,
 * shuffled, with duplicates, malformed messages, base64 parts, parts with
 * invalid UTF-8 and publisher confirms, and can write the exact log text the
 * consumer side must end up with (--expect-dir).  Everything is derived from
 * --seed, so a run is reproducible (except the --timestamp prefixes and the
 * meta.queued_at value).  With --stdin it generates nothing: every input
 * line is one message body, published as it is (e.g. from tools/fleet).
 *
 * The content generator is content.c, the shared AMQP code amqp_common.c.
 * Build: make -C tools (bin/publish)
 * Usage: bin/publish --help
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>

#include <amqp.h>

#include "amqp_common.h"
#include "common.h"
#include "content.h"

#define DEFAULT_QUEUE "reporting.jobs.logs"
#define N_MALFORMED_KINDS 13
#define CONFIRM_TIMEOUT_S 60.0
#define MAX_BEHIND_S 1.0		/* rate limiting: largest catch-up burst */

const char tool_progname[] = "publish";

/* ------------------------------------------------------------------ options */

static struct
{
	const char *url;
	const char *queue;
	const char *exchange;
	const char *exchange_type;
	int			declare;
	long		jobs;
	long long	first_job;
	long		parts;
	long		size;
	double		rate;
	int			shuffle;
	double		dup;
	long		malformed;
	long		big_size;
	long long	malformed_job;
	double		invalid_utf8;
	int			final;
	int			last;
	double		base64;
	int			persistent;
	int			confirm;
	long		confirm_batch;
	const char *expect_dir;
	uint64_t	seed;
	int			timestamp;
	int			from_stdin;
	int			verbose;
}			opt;

/* ------------------------------------------------------------------ helpers */

/* sleep until monotonic time t, through signals (rate limiting) */
static void
sleep_until_mono(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t) t;
	ts.tv_nsec = (long) ((t - (double) ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
	{
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* decisions for one good part: sent base64?  published twice? */
static int
part_is_base64(long long job, long number)
{
	return part_has_invalid(job, number) ||
		(opt.base64 > 0 && unit(hash3(job, number, SALT_B64)) < opt.base64);
}

static int
part_is_dup(long long job, long number)
{
	return opt.dup > 0 && unit(hash3(job, number, SALT_DUP)) < opt.dup;
}

/* ---------------------------------------------------------------- bodies */

static char queued_at[32];
static unsigned char *content_buf;		/* opt.size bytes (or big_size) */
static long long *part_ts;		/* per good part: publish time (--timestamp) */

/* the job id of job index idx */
static long long
job_id_of(long idx)
{
	return opt.first_job + idx;
}

/* the JSON body of good part number of job index jidx, as travis-worker sends it */
static void
body_part(buf_t *b, long jidx, long number)
{
	long long	job = job_id_of(jidx);
	int			b64 = part_is_base64(job, number);
	uint64_t	h = hash3(job, number, SALT_ORDER);
	char		uuid[37];
	long long	ts = 0;

	if (opt.timestamp)
	{
		long long  *slot = &part_ts[(size_t) jidx * (size_t) opt.parts + (size_t) number];

		/* a duplicate repeats the exact body of the first publication */
		if (*slot == 0)
			*slot = now_realtime_us();
		ts = *slot;
	}
	part_content(job, number, ts, content_buf);
	make_uuid(uuid, job, number);

	buf_printf(b, "{\"id\":%lld,", job);
	if (b64 && (h & 1))
		buf_printf(b, "\"encoding\":\"base64\",");
	buf_add(b, "\"log\":\"", 7);
	if (b64)
		base64_encode(b, content_buf, (size_t) opt.size);
	else
		json_escape(b, content_buf, (size_t) opt.size);
	buf_printf(b, "\",\"number\":%ld,", number);
	if ((h >> 1) % 20 == 0)
		buf_printf(b, "\"extra\":1,");	/* unknown fields must be ignored */
	buf_printf(b, "\"uuid\":\"%s\",\"final\":false", uuid);
	if (b64 && !(h & 1))
		buf_printf(b, ",\"encoding\":\"base64\"");
	if (number == 0)
		buf_printf(b, ",\"meta\":{\"queued_at\":\"%s\",\"repo\":\"buildlog-bench/repo-%lld\","
				   "\"queue\":\"builds.gce\",\"infra\":\"gce\",\"tags\":[\"bench\",{\"n\":%lld}]}",
				   queued_at, job % 97, job);
	buf_add(b, "}", 1);
}

/* the JSON body of the final (empty) part of job index jidx */
static void
body_final(buf_t *b, long jidx)
{
	long long	job = job_id_of(jidx);
	char		uuid[37];

	make_uuid(uuid, job, opt.parts);
	if (opt.last)
		buf_printf(b, "{\"id\":%lld,\"log\":\"\",\"number\":\"last\",\"final\":true,\"uuid\":\"%s\"}",
				   job, uuid);
	else
		buf_printf(b, "{\"id\":%lld,\"log\":\"\",\"number\":%ld,\"final\":true,\"uuid\":\"%s\"}",
				   job, opt.parts, uuid);
}

static const char *const malformed_names[N_MALFORMED_KINDS] = {
	"not JSON", "JSON array", "missing id", "id is a string", "negative id",
	"missing number", "number \"first\"", "number -1", "log not a string",
	"bad base64", "part larger than 1 MB", "truncated JSON",
	"raw invalid UTF-8 in the JSON text"
};

/*
 * Malformed message k (kind k % 13).  Those that still carry a usable id use
 * opt.malformed_job (outside the good jobs), so whatever a consumer makes of
 * them, the good jobs' expected logs are unaffected.
 */
static void
body_malformed(buf_t *b, long k)
{
	long long	mj = opt.malformed_job;

	switch (k % N_MALFORMED_KINDS)
	{
		case 0:
			buf_printf(b, "this is not JSON: job %lld part %ld", mj, k);
			break;
		case 1:
			buf_printf(b, "[{\"id\":%lld,\"log\":\"an array\",\"number\":%ld}]", mj, k);
			break;
		case 2:
			buf_printf(b, "{\"log\":\"missing id\",\"number\":%ld,\"final\":false}", k);
			break;
		case 3:
			buf_printf(b, "{\"id\":\"abc\",\"log\":\"id is a string\",\"number\":%ld,\"final\":false}", k);
			break;
		case 4:
			buf_printf(b, "{\"id\":%lld,\"log\":\"negative id\",\"number\":%ld,\"final\":false}", -mj, k);
			break;
		case 5:
			buf_printf(b, "{\"id\":%lld,\"log\":\"missing number\",\"final\":false}", mj);
			break;
		case 6:
			buf_printf(b, "{\"id\":%lld,\"log\":\"number first\",\"number\":\"first\",\"final\":false}", mj);
			break;
		case 7:
			buf_printf(b, "{\"id\":%lld,\"log\":\"number -1\",\"number\":-1,\"final\":false}", mj);
			break;
		case 8:
			buf_printf(b, "{\"id\":%lld,\"log\":12345,\"number\":%ld,\"final\":false}", mj, k);
			break;
		case 9:
			buf_printf(b, "{\"id\":%lld,\"log\":\"!!not*base64 at all%%\",\"number\":%ld,\"final\":false,\"encoding\":\"base64\"}",
					   mj, k);
			break;
		case 10:
			{
				size_t		n = (size_t) opt.big_size;
				unsigned char *big = malloc(n ? n : 1);

				if (!big)
					die("out of memory");
				content_fill(big, n);
				buf_printf(b, "{\"id\":%lld,\"log\":\"", mj);
				json_escape(b, big, n);
				buf_printf(b, "\",\"number\":%ld,\"final\":false}", k);
				free(big);
			}
			break;
		case 11:
			buf_printf(b, "{\"id\":%lld,\"log\":\"truncated JSON\",\"numb", mj);
			break;
		default:
			buf_printf(b, "{\"id\":%lld,\"log\":\"raw \xff byte inside the JSON text\",\"number\":%ld,\"final\":false}",
					   mj, k);
			break;
	}
}

/* ------------------------------------------------------------- schedule */

enum
{
	E_PART, E_DUP, E_FINAL, E_MALFORMED
};

typedef struct
{
	double		key;
	uint32_t	jidx;			/* job index (part, dup, final) */
	int32_t		number;			/* part number, or malformed index */
	uint8_t		kind;
}			entry_t;

/* qsort order of the schedule: by key */
static int
cmp_entry(const void *a, const void *b)
{
	double		x = ((const entry_t *) a)->key,
				y = ((const entry_t *) b)->key;

	return x < y ? -1 : x > y;
}

/*
 * Default order: jobs round-robin, each job's parts in order; a duplicate
 * follows its original within about three rounds (never after the job's
 * final); the final follows the job's last part; malformed messages at
 * random positions.  --shuffle: a uniform shuffle of all of it.
 */
static entry_t *
build_schedule(size_t *count, long *n_dups)
{
	rng_t		r = {opt.seed ^ mix64(SALT_SCHED)};
	size_t		good = (size_t) opt.jobs * (size_t) opt.parts;
	size_t		cap = good * 2 + (size_t) opt.jobs + (size_t) opt.malformed;
	entry_t    *e = malloc((cap ? cap : 1) * sizeof(entry_t));
	size_t		n = 0;
	long		j,
				p,
				dups = 0;

	if (!e)
		die("out of memory for the schedule");
	for (p = 0; p < opt.parts; p++)
		for (j = 0; j < opt.jobs; j++)
		{
			double		i = (double) p * opt.jobs + j;
			double		fk = opt.final ? ((double) opt.parts - 1) * opt.jobs + j + 0.5
				: (double) good + 1;

			e[n++] = (entry_t)
			{
				i, (uint32_t) j, (int32_t) p, E_PART
			};
			if (part_is_dup(job_id_of(j), p))
			{
				double		window = fk - i - 0.01;

				if (window > 3.0 * opt.jobs)
					window = 3.0 * opt.jobs;
				e[n++] = (entry_t)
				{
					i + 0.001 + unit(rng_next(&r)) * window, (uint32_t) j, (int32_t) p, E_DUP
				};
				dups++;
			}
		}
	if (opt.final)
		for (j = 0; j < opt.jobs; j++)
			e[n++] = (entry_t)
		{
			((double) opt.parts - 1) * opt.jobs + j + 0.5, (uint32_t) j, (int32_t) opt.parts, E_FINAL
		};
	for (p = 0; p < opt.malformed; p++)
		e[n++] = (entry_t)
	{
		unit(rng_next(&r)) * ((double) good + opt.jobs), 0, (int32_t) p, E_MALFORMED
	};

	if (opt.shuffle)
	{
		size_t		i;

		for (i = n; i > 1; i--)
		{
			size_t		k = (size_t) rng_below(&r, i);
			entry_t		t = e[i - 1];

			e[i - 1] = e[k];
			e[k] = t;
		}
	}
	else
		qsort(e, n, sizeof(entry_t), cmp_entry);
	*count = n;
	*n_dups = dups;
	return e;
}

/* ----------------------------------------------------------------- AMQP */

static amqp_connection_state_t conn;
static uint64_t next_tag = 1;	/* delivery tag of the next publish */
static uint64_t low_unconfirmed = 1;
static uint8_t *conf_bits;
static long long n_acked,
			n_nacked,
			n_returned;

/* declare (or passively check) the queue or exchange; confirm.select with --confirm */
static void
setup_destination(void)
{
	if (opt.exchange)
	{
		amqp_exchange_declare(conn, 1, amqp_cstring_bytes(opt.exchange),
							  amqp_cstring_bytes(opt.exchange_type),
							  !opt.declare, 1, 0, 0, amqp_empty_table);
		check_rpc(conn, opt.declare ? "exchange.declare" : "exchange.declare (passive; use --declare to create it)");
	}
	else
	{
		amqp_queue_declare(conn, 1, amqp_cstring_bytes(opt.queue),
						   !opt.declare, 1, 0, 0, amqp_empty_table);
		check_rpc(conn, opt.declare ? "queue.declare" : "queue.declare (passive; use --declare to create it)");
	}
	if (opt.confirm)
	{
		amqp_confirm_select(conn, 1);
		check_rpc(conn, "confirm.select");
	}
}

/* count a broker ack or nack of tag (and all below it with multiple) */
static void
mark_confirmed(uint64_t tag, int multiple, int nack)
{
	uint64_t	t;

	if (multiple && tag == 0)
		tag = next_tag - 1;
	if (tag >= next_tag || tag == 0)
		die("broker confirmed unknown delivery tag %" PRIu64, tag);
	for (t = multiple ? low_unconfirmed : tag; t <= tag; t++)
		if (!(conf_bits[t >> 3] & (1u << (t & 7))))
		{
			conf_bits[t >> 3] |= (uint8_t) (1u << (t & 7));
			if (nack)
				n_nacked++;
			else
				n_acked++;
		}
	while (low_unconfirmed < next_tag &&
		   (conf_bits[low_unconfirmed >> 3] & (1u << (low_unconfirmed & 7))))
		low_unconfirmed++;
}

/* handle one frame the broker sent on its own: confirms, returns, closes */
static void
handle_frame(amqp_frame_t *f)
{
	if (f->frame_type != AMQP_FRAME_METHOD)
		return;
	die_if_closed(f);
	switch (f->payload.method.id)
	{
		case AMQP_BASIC_ACK_METHOD:
			{
				amqp_basic_ack_t *a = f->payload.method.decoded;

				mark_confirmed(a->delivery_tag, a->multiple, 0);
				break;
			}
		case AMQP_BASIC_NACK_METHOD:
			{
				amqp_basic_nack_t *a = f->payload.method.decoded;

				mark_confirmed(a->delivery_tag, a->multiple, 1);
				break;
			}
		case AMQP_BASIC_RETURN_METHOD:
			{
				amqp_basic_return_t *m = f->payload.method.decoded;
				amqp_message_t msg;
				amqp_rpc_reply_t r;

				if (n_returned++ == 0)
					fprintf(stderr, "publish: broker returned a message as unroutable: %u %.*s (exchange '%.*s', routing key '%.*s')\n",
							m->reply_code, (int) m->reply_text.len, (char *) m->reply_text.bytes,
							(int) m->exchange.len, (char *) m->exchange.bytes,
							(int) m->routing_key.len, (char *) m->routing_key.bytes);
				r = amqp_read_message(conn, f->channel, &msg, 0);
				if (r.reply_type != AMQP_RESPONSE_NORMAL)
					die("reading a returned message: %s", rpc_error(r));
				amqp_destroy_message(&msg);
				break;
			}
		default:
			break;
	}
}

/*
 * Process frames from the broker.  want == 0: only what has already arrived
 * (no waiting).  Otherwise wait (at most CONFIRM_TIMEOUT_S) until every tag
 * below `want` is confirmed.
 */
static void
pump_frames(uint64_t want)
{
	double		deadline = now_mono() + CONFIRM_TIMEOUT_S;

	for (;;)
	{
		amqp_frame_t f;
		struct timeval tv = {0, 0};
		int			st;

		if (want && low_unconfirmed >= want)
			break;
		if (want)
			tv.tv_sec = 1;
		st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
		if (st == AMQP_STATUS_TIMEOUT)
		{
			if (!want)
				break;
			if (now_mono() > deadline)
				die("no publisher confirm for delivery tag %" PRIu64 " within %.0f s",
					low_unconfirmed, CONFIRM_TIMEOUT_S);
			continue;
		}
		if (st != AMQP_STATUS_OK)
			die("reading from the broker: %s", amqp_error_string2(st));
		handle_frame(&f);
	}
	amqp_maybe_release_buffers(conn);
}

/* without confirms: a synchronous round trip so that errors and returns for
 * everything published so far have arrived */
static void
sync_channel(void)
{
	if (opt.exchange)
		amqp_exchange_declare(conn, 1, amqp_cstring_bytes(opt.exchange),
							  amqp_cstring_bytes(opt.exchange_type), 1, 1, 0, 0, amqp_empty_table);
	else
		amqp_queue_declare(conn, 1, amqp_cstring_bytes(opt.queue), 1, 1, 0, 0, amqp_empty_table);
	check_rpc(conn, "final synchronisation (passive declare)");
	while (amqp_frames_enqueued(conn))
	{
		amqp_frame_t f;
		struct timeval tv = {0, 0};

		if (amqp_simple_wait_frame_noblock(conn, &f, &tv) != AMQP_STATUS_OK)
			break;
		handle_frame(&f);
	}
}

/* ------------------------------------------------------------ publishing */

static amqp_basic_properties_t props;
static amqp_bytes_t exchange_b,
			queue_b;
static size_t conf_cap;			/* bytes allocated in conf_bits */
static double t_start,
			t_sched;			/* rate limiting: when message 0 was due */
static long long n_sent;

/* message properties and destination; starts the clock */
static void
prepare_publishing(void)
{
	memset(&props, 0, sizeof props);
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TYPE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = opt.persistent ? 2 : 1;
	props.type = amqp_cstring_bytes("job:test:log");
	exchange_b = opt.exchange ? amqp_cstring_bytes(opt.exchange) : amqp_empty_bytes;
	queue_b = amqp_cstring_bytes(opt.queue);
	(void) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);	/* precise sleeps */
	t_start = t_sched = now_mono();
}

/* --rate: wait until message i (0-based) is due */
static void
pace(size_t i)
{
	double		target,
				now;

	if (opt.rate <= 0)
		return;
	target = t_sched + (double) i / opt.rate;
	now = now_mono();
	if (target > now)
		sleep_until_mono(target);
	else if (now - target > MAX_BEHIND_S)
		t_sched += now - target - MAX_BEHIND_S; /* slip; no endless burst */
}

/* room in conf_bits for delivery tag `tag` (grows, zero-filled) */
static void
conf_reserve(uint64_t tag)
{
	size_t		need = (size_t) (tag >> 3) + 1;
	size_t		cap = conf_cap ? conf_cap : 4096;

	if (need <= conf_cap)
		return;
	while (cap < need)
		cap *= 2;
	conf_bits = realloc(conf_bits, cap);
	if (!conf_bits)
		die("out of memory");
	memset(conf_bits + conf_cap, 0, cap - conf_cap);
	conf_cap = cap;
}

/* publish one body; with --exchange the routing key is rk_job */
static void
publish_body(const char *data, size_t len, long long rk_job)
{
	amqp_bytes_t body_b;
	char		rk[32];
	int			st;

	body_b.len = len;
	body_b.bytes = (void *) data;
	if (opt.exchange)
		snprintf(rk, sizeof rk, "%lld", rk_job);
	if (opt.confirm)
		conf_reserve(next_tag);
	st = amqp_basic_publish(conn, 1, exchange_b,
							opt.exchange ? amqp_cstring_bytes(rk) : queue_b,
							1, 0, &props, body_b);
	if (st != AMQP_STATUS_OK)
		die("publishing message %lld failed: %s", n_sent + 1, amqp_error_string2(st));
	n_sent++;
	next_tag++;
	if (opt.confirm)
	{
		/* keep at most two batches in flight */
		if (n_sent % opt.confirm_batch == 0)
			pump_frames(next_tag > (uint64_t) opt.confirm_batch
						? next_tag - (uint64_t) opt.confirm_batch : 0);
		else if (amqp_data_in_buffer(conn) || amqp_frames_enqueued(conn) || (n_sent & 255) == 0)
			pump_frames(0);
	}
	else if ((n_sent & 1023) == 0)
		pump_frames(0);
}

/* wait for every confirm (or a round trip); returns seconds since the start */
static double
finish_publishing(void)
{
	if (opt.confirm)
		pump_frames(next_tag);
	else
		sync_channel();
	return now_mono() - t_start;
}

/* end the summary line; fail on nacks, missing confirms, returns */
static void
report_confirms_and_check(void)
{
	if (opt.confirm)
		printf(", %lld confirmed", n_acked);
	putchar('\n');
	fflush(stdout);

	if (n_nacked)
		die("%lld messages were nacked by the broker", n_nacked);
	if (opt.confirm && n_acked != n_sent)
		die("only %lld of %lld messages confirmed", n_acked, n_sent);
	if (n_returned)
		die("%lld messages were unroutable (returned by the broker); is a queue bound?",
			n_returned);
}

/* ----------------------------------------------------------------- stdin */

/*
 * The job id of a body for the routing key: the integer after the first
 * "id" key, found by a plain scan (bodies are not parsed); 0 if none.
 */
static long long
body_job_id(const char *s, size_t n)
{
	const char *end = s + n;
	const char *p = s;

	while ((p = memmem(p, (size_t) (end - p), "\"id\"", 4)) != NULL)
	{
		const char *q = p + 4;

		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (q < end && *q == ':')
		{
			long long	v = 0;

			q++;
			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			if (q < end && *q == '-')
				q++;
			while (q < end && *q >= '0' && *q <= '9' && v < LLONG_MAX / 10 - 10)
				v = v * 10 + (*q++ - '0');
			return v;
		}
		p = q;
	}
	return 0;
}

/* --stdin: publish every input line (without its newline) as one body */
static void
publish_stdin(void)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		n;
	long long	bytes = 0,
				largest = 0;
	double		elapsed;

	if (opt.verbose)
		fprintf(stderr, "publish: lines of standard input to %s '%s', rate %g/s%s%s\n",
				opt.exchange ? "exchange" : "queue", opt.exchange ? opt.exchange : opt.queue,
				opt.rate, opt.persistent ? ", persistent" : ", transient",
				opt.confirm ? ", with confirms" : "");
	conn = connect_broker(opt.url);
	setup_destination();
	prepare_publishing();
	while ((n = getline(&line, &cap, stdin)) != -1)
	{
		if (n > 0 && line[n - 1] == '\n')
			n--;
		pace((size_t) n_sent);
		publish_body(line, (size_t) n, body_job_id(line, (size_t) n));
		bytes += n;
		if (n > largest)
			largest = n;
	}
	if (ferror(stdin))
		die("reading standard input: %s", strerror(errno));
	free(line);
	elapsed = finish_publishing();
	close_broker(conn);

	printf("published %lld messages (lines of standard input, %lld bytes, largest %lld) in %.3f s = %.0f msg/s",
		   n_sent, bytes, largest, elapsed, elapsed > 0 ? (double) n_sent / elapsed : 0.0);
	report_confirms_and_check();
}

/* --------------------------------------------------------------- expect */

/* write data to path, or die */
static void
write_file(const char *path, const void *data, size_t n)
{
	FILE	   *f = fopen(path, "wb");

	if (!f)
		die("cannot create %s: %s", path, strerror(errno));
	if (n && fwrite(data, 1, n, f) != n)
		die("cannot write %s: %s", path, strerror(errno));
	if (fclose(f) != 0)
		die("cannot write %s: %s", path, strerror(errno));
}

/* --expect-dir: every job's expected log, raw and cleaned */
static void
write_expected(void)
{
	buf_t		raw = {0},
				clean = {0};
	char		path[4096];
	long		j,
				p;

	if (mkdir(opt.expect_dir, 0777) != 0 && errno != EEXIST)
		die("cannot create %s: %s", opt.expect_dir, strerror(errno));
	for (j = 0; j < opt.jobs; j++)
	{
		long long	job = job_id_of(j);

		raw.len = clean.len = 0;
		for (p = 0; p < opt.parts; p++)
		{
			long long	ts = opt.timestamp ? part_ts[(size_t) j * (size_t) opt.parts + (size_t) p] : 0;
			size_t		i;

			part_content(job, p, ts, content_buf);
			buf_add(&raw, content_buf, (size_t) opt.size);
			for (i = 0; i < (size_t) opt.size; i++)
			{
				if (content_buf[i] == 0xFF)
					buf_add(&clean, "\xef\xbf\xbd", 3);
				else
					buf_add(&clean, content_buf + i, 1);
			}
		}
		snprintf(path, sizeof path, "%s/%lld.log", opt.expect_dir, job);
		write_file(path, raw.p, raw.len);
		snprintf(path, sizeof path, "%s/%lld.clean", opt.expect_dir, job);
		write_file(path, clean.p, clean.len);
	}
	free(raw.p);
	free(clean.p);
}

/* ----------------------------------------------------------------- main */

/* --help */
static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: publish [OPTIONS]\n"
			"       publish --stdin [DESTINATION AND DELIVERY OPTIONS] <BODIES\n"
			"Publish travis-worker style log parts (JSON) to RabbitMQ.\n\n"
			"Destination:\n"
			"  --url URL          amqp://user:pass@host:port[/vhost] (default $BUILDLOG_AMQP_URL,\n"
			"                     else amqp://guest:guest@localhost:5672)\n"
			"  --queue NAME       publish to this queue via the default exchange\n"
			"                     (default " DEFAULT_QUEUE ")\n"
			"  --exchange NAME    publish to this exchange, routing key = job id\n"
			"  --exchange-type T  type for --declare with --exchange (default x-consistent-hash)\n"
			"  --declare          declare the queue/exchange durable (otherwise it must exist)\n"
			"Load (not with --stdin):\n"
			"  --jobs N           number of jobs (default 10)\n"
			"  --first-job ID     first job id (default 1); jobs are ID .. ID+N-1\n"
			"  --parts M          parts per job, numbers 0..M-1 (default 100)\n"
			"  --size BYTES       content bytes per part (default 200)\n"
			"  --rate R           messages/s over the whole run, 0 = unlimited (default 0)\n"
			"  --shuffle          shuffle all messages (default: jobs round-robin, parts in order)\n"
			"  --dup RATIO        fraction of parts published twice (identical body)\n"
			"  --malformed N      also publish N malformed messages at random positions\n"
			"                     (cycling through %d kinds; usable ids are --malformed-job)\n"
			"  --malformed-job ID job id used by malformed messages (default first-job + jobs)\n"
			"  --big-size BYTES   content size of the 'larger than 1 MB' kind (default 1100000)\n"
			"  --invalid-utf8 R   fraction of parts with 1-3 raw 0xFF bytes (sent base64)\n"
			"  --base64 RATIO     fraction of parts sent with \"encoding\":\"base64\"\n"
			"  --final/--no-final publish {\"final\":true,\"log\":\"\"} after each job (default on)\n"
			"  --last             number the final part \"last\" instead of M\n"
			"  --timestamp        content starts with \"T%%016lld \" = publish time in us (realtime)\n"
			"  --seed S           seed for everything random (default 1)\n"
			"Delivery:\n"
			"  --persistent/--transient  delivery mode 2 (default) or 1\n"
			"  --confirm          publisher confirms, waited for every --confirm-batch messages\n"
			"  --confirm-batch N  (default 1000)\n"
			"Standard input instead of the generated load:\n"
			"  --stdin            publish every line of standard input (without its newline)\n"
			"                     as one message body, unchanged, in order; honours the\n"
			"                     destination, --rate, --persistent and --confirm options\n"
			"                     (routing key = the integer after the first \"id\" key, else 0)\n"
			"Output:\n"
			"  --expect-dir DIR   write DIR/<job>.log (raw content bytes, in number order, once)\n"
			"                     and DIR/<job>.clean (0xFF -> U+FFFD) for every job\n"
			"  --verbose          print the settings to stderr\n",
			N_MALFORMED_KINDS);
}

int
main(int argc, char **argv)
{
	enum
	{
		O_URL = 256, O_QUEUE, O_EXCHANGE, O_EXTYPE, O_DECLARE, O_JOBS, O_FIRST, O_PARTS,
		O_SIZE, O_RATE, O_SHUFFLE, O_DUP, O_MALFORMED, O_MJOB, O_BIG, O_INVALID, O_FINAL,
		O_NOFINAL, O_LAST, O_BASE64, O_PERSISTENT, O_TRANSIENT, O_CONFIRM, O_CBATCH,
		O_EXPECT, O_SEED, O_TIMESTAMP, O_STDIN, O_VERBOSE, O_HELP
	};
	static const struct option longopts[] = {
		{"url", required_argument, NULL, O_URL},
		{"queue", required_argument, NULL, O_QUEUE},
		{"exchange", required_argument, NULL, O_EXCHANGE},
		{"exchange-type", required_argument, NULL, O_EXTYPE},
		{"declare", no_argument, NULL, O_DECLARE},
		{"jobs", required_argument, NULL, O_JOBS},
		{"first-job", required_argument, NULL, O_FIRST},
		{"parts", required_argument, NULL, O_PARTS},
		{"size", required_argument, NULL, O_SIZE},
		{"rate", required_argument, NULL, O_RATE},
		{"shuffle", no_argument, NULL, O_SHUFFLE},
		{"dup", required_argument, NULL, O_DUP},
		{"malformed", required_argument, NULL, O_MALFORMED},
		{"malformed-job", required_argument, NULL, O_MJOB},
		{"big-size", required_argument, NULL, O_BIG},
		{"invalid-utf8", required_argument, NULL, O_INVALID},
		{"final", no_argument, NULL, O_FINAL},
		{"no-final", no_argument, NULL, O_NOFINAL},
		{"last", no_argument, NULL, O_LAST},
		{"base64", required_argument, NULL, O_BASE64},
		{"persistent", no_argument, NULL, O_PERSISTENT},
		{"transient", no_argument, NULL, O_TRANSIENT},
		{"confirm", no_argument, NULL, O_CONFIRM},
		{"confirm-batch", required_argument, NULL, O_CBATCH},
		{"expect-dir", required_argument, NULL, O_EXPECT},
		{"seed", required_argument, NULL, O_SEED},
		{"timestamp", no_argument, NULL, O_TIMESTAMP},
		{"stdin", no_argument, NULL, O_STDIN},
		{"verbose", no_argument, NULL, O_VERBOSE},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	int			c;
	int			longindex = 0;
	int			mjob_set = 0;
	const char *load_opt = NULL;
	entry_t    *sched;
	size_t		n_sched,
				i;
	long		n_dups;
	long long	n_good = 0,
				n_dup_sent = 0,
				n_bad = 0,
				n_final = 0;
	buf_t		body = {0};
	double		elapsed;

	opt.queue = DEFAULT_QUEUE;
	opt.exchange_type = "x-consistent-hash";
	opt.jobs = 10;
	opt.first_job = 1;
	opt.parts = 100;
	opt.size = 200;
	opt.big_size = 1100000;
	opt.final = 1;
	opt.persistent = 1;
	opt.confirm_batch = 1000;
	opt.seed = 1;

	while ((c = getopt_long(argc, argv, "h", longopts, &longindex)) != -1)
	{
		if ((c >= O_JOBS && c <= O_BASE64 && c != O_RATE) ||
			c == O_EXPECT || c == O_SEED || c == O_TIMESTAMP)
			load_opt = longopts[longindex].name;
		switch (c)
		{
			case O_URL:
				opt.url = optarg;
				break;
			case O_QUEUE:
				opt.queue = optarg;
				break;
			case O_EXCHANGE:
				opt.exchange = optarg;
				break;
			case O_EXTYPE:
				opt.exchange_type = optarg;
				break;
			case O_DECLARE:
				opt.declare = 1;
				break;
			case O_JOBS:
				opt.jobs = (long) parse_ll("jobs", optarg, 0, 100000000);
				break;
			case O_FIRST:
				opt.first_job = parse_ll("first-job", optarg, 1, LLONG_MAX / 2);
				break;
			case O_PARTS:
				opt.parts = (long) parse_ll("parts", optarg, 0, 1000000000);
				break;
			case O_SIZE:
				opt.size = (long) parse_ll("size", optarg, 0, 64 << 20);
				break;
			case O_RATE:
				opt.rate = parse_double("rate", optarg, 0, 1e9);
				break;
			case O_SHUFFLE:
				opt.shuffle = 1;
				break;
			case O_DUP:
				opt.dup = parse_double("dup", optarg, 0, 1);
				break;
			case O_MALFORMED:
				opt.malformed = (long) parse_ll("malformed", optarg, 0, 100000000);
				break;
			case O_MJOB:
				opt.malformed_job = parse_ll("malformed-job", optarg, 1, LLONG_MAX / 2);
				mjob_set = 1;
				break;
			case O_BIG:
				opt.big_size = (long) parse_ll("big-size", optarg, 0, 256 << 20);
				break;
			case O_INVALID:
				opt.invalid_utf8 = parse_double("invalid-utf8", optarg, 0, 1);
				break;
			case O_FINAL:
				opt.final = 1;
				break;
			case O_NOFINAL:
				opt.final = 0;
				break;
			case O_LAST:
				opt.last = 1;
				break;
			case O_BASE64:
				opt.base64 = parse_double("base64", optarg, 0, 1);
				break;
			case O_PERSISTENT:
				opt.persistent = 1;
				break;
			case O_TRANSIENT:
				opt.persistent = 0;
				break;
			case O_CONFIRM:
				opt.confirm = 1;
				break;
			case O_CBATCH:
				opt.confirm_batch = (long) parse_ll("confirm-batch", optarg, 1, 10000000);
				break;
			case O_EXPECT:
				opt.expect_dir = optarg;
				break;
			case O_SEED:
				opt.seed = (uint64_t) parse_ll("seed", optarg, LLONG_MIN, LLONG_MAX);
				break;
			case O_TIMESTAMP:
				opt.timestamp = 1;
				break;
			case O_STDIN:
				opt.from_stdin = 1;
				break;
			case O_VERBOSE:
				opt.verbose = 1;
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
	opt.url = broker_url(opt.url);
	if (opt.from_stdin)
	{
		if (load_opt)
			die("--%s cannot be used with --stdin (the input is the load)", load_opt);
		publish_stdin();
		return 0;
	}
	if (opt.timestamp && opt.size < TS_PREFIX_LEN)
		die("--timestamp needs --size >= %d", TS_PREFIX_LEN);
	if ((double) opt.jobs * (double) opt.parts > 2e9)
		die("--jobs x --parts is too large");
	if (!mjob_set)
		opt.malformed_job = opt.first_job + opt.jobs;
	if (opt.last && opt.parts >= INT32_MAX)
		die("--parts too large");

	{
		time_t		t = time(NULL);
		struct tm	tm;

		gmtime_r(&t, &tm);
		strftime(queued_at, sizeof queued_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	{
		content_opts_t co = {opt.seed, opt.size, opt.timestamp, opt.invalid_utf8};

		content_init(&co);
	}
	content_buf = malloc((size_t) opt.size + 1);
	if (!content_buf)
		die("out of memory");
	if (opt.timestamp)
	{
		part_ts = calloc((size_t) opt.jobs * (size_t) opt.parts + 1, sizeof(long long));
		if (!part_ts)
			die("out of memory");
	}
	sched = build_schedule(&n_sched, &n_dups);
	if (opt.verbose)
		fprintf(stderr, "publish: %zu messages to %s '%s': %ld jobs from %lld, %ld parts of %ld bytes, "
				"%ld duplicates, %ld malformed (job %lld), rate %g/s, seed %" PRIu64 "\n",
				n_sched, opt.exchange ? "exchange" : "queue", opt.exchange ? opt.exchange : opt.queue,
				opt.jobs, opt.first_job, opt.parts, opt.size, n_dups, opt.malformed,
				opt.malformed_job, opt.rate, opt.seed);
	if (opt.verbose && opt.malformed)
	{
		long		k;

		fprintf(stderr, "publish: malformed kinds (cycled):");
		for (k = 0; k < N_MALFORMED_KINDS && k < opt.malformed; k++)
			fprintf(stderr, "%s %ld=%s", k ? "," : "", k, malformed_names[k]);
		fputc('\n', stderr);
	}

	conn = connect_broker(opt.url);
	setup_destination();
	prepare_publishing();
	for (i = 0; i < n_sched; i++)
	{
		entry_t    *e = &sched[i];
		long long	rk_job;

		pace(i);
		body.len = 0;
		switch (e->kind)
		{
			case E_PART:
			case E_DUP:
				body_part(&body, (long) e->jidx, (long) e->number);
				rk_job = job_id_of((long) e->jidx);
				if (e->kind == E_PART)
					n_good++;
				else
					n_dup_sent++;
				break;
			case E_FINAL:
				body_final(&body, (long) e->jidx);
				rk_job = job_id_of((long) e->jidx);
				n_final++;
				break;
			default:
				body_malformed(&body, (long) e->number);
				rk_job = opt.malformed_job;
				n_bad++;
				break;
		}
		publish_body(body.p, body.len, rk_job);
	}
	elapsed = finish_publishing();

	if (opt.expect_dir)
		write_expected();
	close_broker(conn);

	printf("published %lld messages (%lld good parts, %lld duplicates, %lld malformed, %lld finals) in %.3f s = %.0f msg/s",
		   n_sent, n_good, n_dup_sent, n_bad, n_final, elapsed,
		   elapsed > 0 ? (double) n_sent / elapsed : 0.0);
	report_confirms_and_check();
	return 0;
}
