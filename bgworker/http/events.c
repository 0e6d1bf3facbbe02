/*-------------------------------------------------------------------------
 * events.c
 *	  GET /jobs/{id}/events: a job's parts as Server-Sent Events, live.
 *
 * The event id is a durable cursor: the set of part numbers the client has
 * received, as ranges ("0-41,44,46-50"; "-1-41" with the head of a log set
 * whole, which readers see as part -1).  A client that reconnects with
 * Last-Event-ID (or opens ?after=N, meaning 0..N) gets exactly the parts
 * not in its set, replayed from the database, and nothing twice; a part
 * that arrives out of order is sent when it arrives, with its number.  Once
 * the final part is sent and no number below it is missing, an "end" event
 * carries the log's size and SHA-256 and the stream ends.
 *
 * No polling: the stream's job is marked in live.h's shared bitmap, and a
 * commit that writes it (any ingest path) sets the worker's latch; the
 * worker then reads the new parts of the jobs marked dirty (one query per
 * job, in a step), appends the events to each stream's buffer and resumes
 * the streams libmicrohttpd had suspended for want of data.  Heartbeat
 * comments every 15 s keep proxies (and the detection of gone clients)
 * going.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http/auth.h"
#include "http/events.h"
#include "http/limits.h"
#include "http/reader_pool.h"
#include "http/reads.h"
#include "live.h"
#include "merge.h"
#include "spiutil.h"

#define HEARTBEAT_S			15
/*
 * A cursor holds at most this many ranges: a longer Last-Event-ID is
 * refused, and a part that would open one more range in a stream's set
 * waits until a missing number joins the ranges (it comes with the next
 * read).  Every event repeats the cursor, so it must stay small: parts
 * numbered 0, 2, 4, ... would otherwise make the backlog grow with the
 * square of their count.
 */
#define MAX_CURSOR_RANGES	64
/*
 * The largest chunk handed to libmicrohttpd at once.  libmicrohttpd
 * allocates a buffer of that size per stream (and writes a chunked body
 * through the connection's own pool), so it costs memory per open stream:
 * 64 kB made 10,000 idle streams take 1 GB.
 */
#define READ_BLOCK			(2 * 1024)
#define OUT_INITIAL			64	/* a stream's first buffer (initStringInfo's is 1 kB) */
/*
 * Backpressure: a stream takes more events (from its reader's answer, or
 * live) only while fewer bytes than this wait to be sent; a client that
 * reads nothing costs at most this (plus one event), and a drained buffer
 * above OUT_KEEP is given back.
 */
#define STREAM_MAX_UNSENT	(1024 * 1024)
#define OUT_KEEP			(64 * 1024)

/* A range of part numbers, lo..hi inclusive. */
typedef struct NumberRange
{
	int32		lo;
	int32		hi;
} NumberRange;

/* One open event stream. */
typedef struct EventStream
{
	dlist_node	node;			/* in HttpWorker.streams */
	dlist_node	job_node;		/* in its WatchedJob's streams */
	HttpWorker *h;
	struct MHD_Connection *conn;
	int64		job_id;
	uint32		client;			/* its address as counted by the limits, or 0 */
	bool		has_token;		/* opened with a read token (a revocation ends it) */
	TokenClaims claims;
	int			fd;				/* the client's socket (to notice it close) */
	NumberRange *ranges;		/* the numbers sent, ascending, disjoint */
	int			nranges;
	int			capacity;
	bool		final_seen;		/* a final part was sent */
	int32		final_number;
	StringInfoData out;			/* bytes not yet handed to libmicrohttpd */
	size_t		handed;			/* bytes of out already handed */
	bool		suspended;
	bool		ending;			/* the end event is queued: close after it */
	int			read_slot;		/* its read handed to the readers, or -1 */
	int			answer_fd;		/* a reader's answer still being fed, or -1 */
	int64		answer_left;	/* its bytes not fed yet */
	bool		held;			/* parts were left out for backpressure:
								 * read them again once drained */
	bool		end_wanted;		/* complete: the end event is to be read */
	bool		read_wanted;	/* a read waits for a free read slot */
	bool		end_failed;		/* its read found no end: ask again only once
								 * a new part was sent (a read per commit, not
								 * a loop) */
	TimestampTz last_write;
} EventStream;

/* A job some streams watch (HttpWorker.watched). */
typedef struct WatchedJob
{
	int64		job_id;			/* hash key */
	dlist_head	streams;
} WatchedJob;

/* What a refill step reads: the watched jobs written since the last one. */
typedef struct Refill
{
	WatchedJob **jobs;
	int			njobs;
} Refill;


/* Is number in the stream's set? */
static bool
has_number(EventStream *st, int32 number)
{
	int			lo = 0;
	int			hi = st->nranges - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (number < st->ranges[mid].lo)
			hi = mid - 1;
		else if (number > st->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Index of the first range of the set not below number. */
static int
range_at(EventStream *st, int32 number)
{
	int			i = 0;

	while (i < st->nranges && st->ranges[i].hi < number)
		i++;
	return i;
}

/* Would number (not in the set) open a new range rather than extend one? */
static bool
opens_range(EventStream *st, int32 number)
{
	int			i = range_at(st, number);

	return !((i > 0 && (int64) st->ranges[i - 1].hi + 1 == number) ||
			 (i < st->nranges && (int64) st->ranges[i].lo - 1 == number));
}

/* Add number to the set (not in it yet), merging neighbouring ranges. */
static void
add_number(EventStream *st, int32 number)
{
	int			i = range_at(st, number);

	/* extend the range before, the range after, or both (64-bit: no wrap) */
	if (i > 0 && (int64) st->ranges[i - 1].hi + 1 == number)
	{
		st->ranges[i - 1].hi = number;
		if (i < st->nranges && (int64) st->ranges[i].lo - 1 == number)
		{
			st->ranges[i - 1].hi = st->ranges[i].hi;
			memmove(&st->ranges[i], &st->ranges[i + 1],
					sizeof(NumberRange) * (st->nranges - i - 1));
			st->nranges--;
		}
		return;
	}
	if (i < st->nranges && (int64) st->ranges[i].lo - 1 == number)
	{
		st->ranges[i].lo = number;
		return;
	}
	if (st->nranges == st->capacity)
	{
		st->capacity *= 2;
		st->ranges = repalloc(st->ranges, sizeof(NumberRange) * st->capacity);
	}
	memmove(&st->ranges[i + 1], &st->ranges[i], sizeof(NumberRange) * (st->nranges - i));
	st->ranges[i].lo = st->ranges[i].hi = number;
	st->nranges++;
}

/*
 * The contiguous prefix end: every number from 0 (or the head, -1) up to it
 * was sent; -1 when part 0 was not.
 */
static int32
prefix_end(EventStream *st)
{
	return st->nranges > 0 && st->ranges[0].lo <= 0 ? st->ranges[0].hi : -1;
}

/* The cursor as text: "0-41,44,46-50" ("" for none). */
static void
append_cursor(StringInfo buf, EventStream *st)
{
	for (int i = 0; i < st->nranges; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		if (st->ranges[i].lo == st->ranges[i].hi)
			appendStringInfo(buf, "%d", st->ranges[i].lo);
		else
			appendStringInfo(buf, "%d-%d", st->ranges[i].lo, st->ranges[i].hi);
	}
}

/*
 * Read a part number (0 .. 2147483647, or -1 for the head when head_ok) at
 * *p; false if there is none.
 */
static bool
read_number(const char **p, bool head_ok, int32 *out)
{
	int64		n = 0;

	if (head_ok && (*p)[0] == '-' && (*p)[1] == '1' && !isdigit((unsigned char) (*p)[2]))
	{
		*p += 2;
		*out = HEAD_NUMBER;
		return true;
	}
	if (!isdigit((unsigned char) **p))
		return false;
	for (; isdigit((unsigned char) **p); (*p)++)
	{
		n = n * 10 + (**p - '0');
		if (n > PG_INT32_MAX)
			return false;
	}
	*out = (int32) n;
	return true;
}

/*
 * Parse a cursor (a Last-Event-ID) into the stream's set: ascending,
 * disjoint ranges of part numbers.  False (with *why) when it is not one.
 */
static bool
parse_cursor(EventStream *st, const char *text, const char **why)
{
	const char *p = text;
	int64		last = -1;

	while (*p != '\0')
	{
		int32		lo;
		int32		hi;

		if (!read_number(&p, st->nranges == 0, &lo))
		{
			*why = "Last-Event-ID must be part numbers and ranges like 0-41,44,46-50.";
			return false;
		}
		hi = lo;
		if (*p == '-')
		{
			p++;
			if (!read_number(&p, false, &hi) || hi < lo)
			{
				*why = "A range in Last-Event-ID must be low-high with low <= high.";
				return false;
			}
		}
		if (st->nranges > 0 && (int64) lo <= last + 1)
		{
			*why = "The ranges of Last-Event-ID must ascend without touching.";
			return false;
		}
		if (st->nranges == MAX_CURSOR_RANGES)
		{
			*why = "Last-Event-ID has too many ranges.";
			return false;
		}
		if (st->nranges == st->capacity)
		{
			st->capacity *= 2;
			st->ranges = repalloc(st->ranges, sizeof(NumberRange) * st->capacity);
		}
		st->ranges[st->nranges].lo = lo;
		st->ranges[st->nranges].hi = hi;
		st->nranges++;
		last = hi;
		if (*p == ',')
			p++;
		else if (*p != '\0')
		{
			*why = "Last-Event-ID must be part numbers and ranges like 0-41,44,46-50.";
			return false;
		}
	}
	return true;
}

/* Is the log complete for this stream: the final part sent, no gap below? */
static bool
stream_complete(EventStream *st)
{
	int			below = 0;

	if (!st->final_seen)
		return false;
	/* the ranges at or below the final number (travis' "last" sits apart) */
	for (int i = 0; i < st->nranges; i++)
		if (st->ranges[i].lo <= st->final_number &&
			!(st->final_number == PG_INT32_MAX && st->ranges[i].lo == PG_INT32_MAX))
			below++;
	return below <= 1;
}

/* Bytes of the stream's buffer not handed to libmicrohttpd yet. */
static size_t
unsent(EventStream *st)
{
	return st->out.len - st->handed;
}

/* A part read for the streams: its event's data, JSON-escaped once for all of them. */
typedef struct PartEvent
{
	int32		number;
	bool		final;
	char	   *data;			/* {"number":N,"final":B,"content":"..."} */
	int			len;
} PartEvent;

/* Start a part's event data in buf: {"number":N,"final":B,"content": */
static void
part_event_open(StringInfo buf, int32 number, bool final)
{
	initStringInfo(buf);
	appendStringInfo(buf, "{\"number\":%d,\"final\":%s,\"content\":",
					 number, final ? "true" : "false");
}

/* Close the event data begun by part_event_open (its content appended) into *ev. */
static void
part_event_close(StringInfo buf, int32 number, bool final, PartEvent *ev)
{
	appendStringInfoChar(buf, '}');
	ev->number = number;
	ev->final = final;
	ev->data = buf->data;
	ev->len = buf->len;
}

/* A part as an event's data, JSON-escaped here once for every stream. */
static void
part_event(int32 number, bool final, const char *content, PartEvent *ev)
{
	StringInfoData buf;

	part_event_open(&buf, number, final);
	escape_json(&buf, content);
	part_event_close(&buf, number, final, ev);
}

/*
 * Row i of the current SPI query as an event: its columns number, content,
 * final from column "first" on.
 */
static void
part_event_at(uint64 i, int first, PartEvent *ev)
{
	HeapTuple	tup = SPI_tuptable->vals[i];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	char	   *content;

	content = TextDatumGetCString(SPI_getbinval(tup, desc, first + 1, &isnull));
	part_event(DatumGetInt32(SPI_getbinval(tup, desc, first, &isnull)),
			   DatumGetBool(SPI_getbinval(tup, desc, first + 2, &isnull)), content, ev);
	pfree(content);
}

/* Append to a stream the events of the parts not in its set, in the order read. */
static void
append_new_parts(EventStream *st, PartEvent *ev, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (has_number(st, ev[i].number))
			continue;
		/* a cursor of too many ranges: the part waits for the missing numbers */
		if (st->nranges >= MAX_CURSOR_RANGES && opens_range(st, ev[i].number))
			continue;
		/* a full buffer: the part waits until the client has read it */
		if (unsent(st) >= STREAM_MAX_UNSENT)
		{
			st->held = true;
			continue;
		}
		add_number(st, ev[i].number);
		st->end_failed = false;
		if (ev[i].final)
		{
			st->final_seen = true;
			st->final_number = ev[i].number;
		}
		appendStringInfoString(&st->out, "id: ");
		append_cursor(&st->out, st);
		appendStringInfoString(&st->out, "\nevent: part\ndata: ");
		appendBinaryStringInfo(&st->out, ev[i].data, ev[i].len);
		appendStringInfoString(&st->out, "\n\n");
		pg_atomic_fetch_add_u64(&st->h->stats->events, 1);
	}
}

/* Hand new bytes to libmicrohttpd: resume a suspended stream. */
static void
wake_stream(EventStream *st)
{
	if (st->suspended && (st->out.len > st->handed || st->ending))
	{
		st->suspended = false;
		MHD_resume_connection(st->conn);
	}
}

/*
 * libmicrohttpd asks for the next bytes of a stream: what is buffered, or
 * the end; with nothing buffered the connection is suspended until a
 * refill resumes it (returning 0 without suspending would busy-wait).
 */
static ssize_t
read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	EventStream *st = (EventStream *) cls;
	size_t		left = st->out.len - st->handed;
	size_t		n;

	if (left == 0)
	{
		if (st->ending)
			return MHD_CONTENT_READER_END_OF_STREAM;
		st->suspended = true;
		MHD_suspend_connection(st->conn);
		/* more of its answer, or parts held back: the loop feeds them */
		if (st->answer_fd >= 0 || st->held)
			SetLatch(MyLatch);
		return 0;
	}
	n = Min(left, max);
	memcpy(buf, st->out.data + st->handed, n);
	st->handed += n;
	if (st->handed == st->out.len)
	{
		resetStringInfo(&st->out);
		st->handed = 0;
	}
	pg_atomic_fetch_add_u64(&st->h->stats->bytes_sent, n);
	return (ssize_t) n;
}

void
buildlog_http_events_init(HttpWorker *h)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(WatchedJob);
	ctl.hcxt = h->w.loop_cxt;
	h->watched = hash_create("buildlog http watched jobs", 256, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* libmicrohttpd is done with a stream (sent, or the client went away). */
static void
free_stream(void *cls)
{
	EventStream *st = (EventStream *) cls;
	WatchedJob *job = hash_search(st->h->watched, &st->job_id, HASH_FIND, NULL);

	if (st->read_slot >= 0)
		buildlog_http_read_cancel(st->h, st->read_slot);
	if (st->answer_fd >= 0)
		close(st->answer_fd);
	if (job != NULL)
	{
		dlist_delete(&st->job_node);
		if (dlist_is_empty(&job->streams))
			hash_search(st->h->watched, &st->job_id, HASH_REMOVE, NULL);
	}
	buildlog_live_watch(st->job_id, -1);
	buildlog_http_stream_release(st->client);
	pg_atomic_fetch_sub_u64(&st->h->stats->streams, 1);
	dlist_delete(&st->node);
	pfree(st->out.data);
	pfree(st->ranges);
	pfree(st);
}

/*
 * Hand the stream's read (its parts after its received prefix, and the end
 * once complete) to the readers; false when none can take it now.
 */
/* What a stream's read asks for: its parts after its received prefix. */
static void
events_args(EventStream *st, HttpReadArgs *args)
{
	memset(args, 0, sizeof(*args));
	args->kind = HTTP_READ_EVENTS;
	args->job_id = st->job_id;
	args->after = prefix_end(st);
	args->start = -1;
}

static bool
request_read(HttpWorker *h, EventStream *st)
{
	HttpReadArgs args;
	int			i;

	events_args(st, &args);
	i = buildlog_http_read_submit(h, &args, st);
	if (i < 0)
		return false;
	st->read_slot = i;
	return true;
}

/*
 * Take n bytes of the stream's answer into buf, from memory (*mem, a read
 * run here) or the reader's file; false when it ends early or fails.
 */
static bool
answer_take(EventStream *st, const char **mem, char *buf, size_t n)
{
	if ((uint64) st->answer_left < n)
		return false;
	if (*mem != NULL)
	{
		memcpy(buf, *mem, n);
		*mem += n;
	}
	else if (!buildlog_http_read_fd(st->answer_fd, buf, n))
		return false;
	st->answer_left -= n;
	return true;
}

/*
 * Feed the stream the records of its answer (see http.h): the parts it has
 * not got, then the end.  With a cap, only while its buffer has room (the
 * rest stays in the reader's file until the client has read); false when
 * the answer is malformed or cannot be read.  The content comes escaped.
 */
static bool
feed_records(EventStream *st, const char *mem, bool cap)
{
	while (st->answer_left > 0 && !st->ending &&
		   (!cap || unsent(st) < STREAM_MAX_UNSENT))
	{
		HttpEventRecord rec;
		HttpEventEnd fin;

		if (!answer_take(st, &mem, (char *) &rec, sizeof(rec)))
			return false;
		if (rec.number >= HEAD_NUMBER)
		{
			StringInfoData buf;
			PartEvent	ev;

			if ((uint64) st->answer_left < rec.len)
				return false;
			/* the content comes escaped: read it straight into the event's data */
			part_event_open(&buf, rec.number, rec.final);
			enlargeStringInfo(&buf, (int) rec.len);
			if (!answer_take(st, &mem, buf.data + buf.len, rec.len))
				return false;
			buf.len += rec.len;
			buf.data[buf.len] = '\0';
			part_event_close(&buf, rec.number, rec.final, &ev);
			if (!has_number(st, rec.number))
				append_new_parts(st, &ev, 1);
			pfree(ev.data);
			continue;
		}
		if (!answer_take(st, &mem, (char *) &fin, sizeof(fin)))
			return false;
		if (!st->final_seen)
		{
			/* resumed past the final part: it must still end */
			st->final_seen = true;
			st->final_number = fin.final_number;
		}
		if (rec.number == HTTP_EVENT_END && stream_complete(st))
		{
			appendStringInfoString(&st->out, "id: ");
			append_cursor(&st->out, st);
			appendStringInfo(&st->out, "\nevent: end\ndata: {\"size\":" INT64_FORMAT ",\"sha256\":\"%s\"}\n\n",
							 fin.size, fin.sha256);
			st->ending = true;
		}
	}
	return true;
}

/* Let go of the reader's file of a stream's answer. */
static void
answer_close(EventStream *st)
{
	if (st->answer_fd >= 0)
		close(st->answer_fd);
	st->answer_fd = -1;
	st->answer_left = 0;
}

/*
 * A failed read (status, or an answer that cannot be read) closes the
 * stream: the client reconnects (retry: 1000) and resumes from its cursor.
 */
static void
answer_failed(HttpWorker *h, EventStream *st, unsigned int status)
{
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

	answer_close(st);
	buildlog_worker_problem(&h->w, WARNING,
							psprintf("the read of job " INT64_FORMAT "'s events failed (status %u); closing its stream",
									 st->job_id, status));
	appendStringInfoString(&st->out, ": the read of the parts failed; reconnect\n\n");
	st->ending = true;
	MemoryContextSwitchTo(old);
}

/* The whole answer was fed: read the end, and commits after the read's snapshot. */
static void
answer_done(HttpWorker *h, EventStream *st)
{
	answer_close(st);
	if (!st->ending && stream_complete(st) && !st->end_failed)
		st->end_wanted = true;	/* complete with the parts it brought: read the end */
	if (!st->ending)
	{
		buildlog_live_mark(st->job_id);
		h->seen_wakeups--;		/* as if a commit had woken us */
	}
}

/* Feed more of a stream's answer from the reader's file, as far as its buffer allows. */
static void
feed_more(HttpWorker *h, EventStream *st)
{
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);
	bool		ok = feed_records(st, NULL, true);

	MemoryContextSwitchTo(old);
	if (!ok)
		answer_failed(h, st, MHD_HTTP_OK);
	else if (st->answer_left == 0 || st->ending)
		answer_done(h, st);
	wake_stream(st);
}

void
buildlog_http_events_read_done(HttpWorker *h, void *stream, int i)
{
	EventStream *st = (EventStream *) stream;
	HttpReadSlot head;
	int			fd = buildlog_http_read_take(h, i, &head);

	st->read_slot = -1;
	if (fd < 0 || head.status != MHD_HTTP_OK)
	{
		if (fd >= 0)
			close(fd);
		answer_failed(h, st, head.status);
		wake_stream(st);
		return;
	}
	/* a read that adds no part and has no end is not repeated until one comes */
	st->end_failed = true;
	st->answer_fd = fd;
	st->answer_left = head.body_len;
	feed_more(h, st);
}

/*
 * The same read run here, when no reader can take it (none runs, or every
 * read slot is taken); false when its step failed (w.error).  Its answer
 * is in memory: fed at once, the parts beyond the buffer's room held back
 * and read again once the client has read.
 */
static bool
read_here(HttpWorker *h, EventStream *st)
{
	HttpReadArgs args;
	HttpResponse r;
	HttpReadCall call = {&args, &r};
	MemoryContext old;
	bool		ok;

	events_args(st, &args);
	memset(&r, 0, sizeof(r));
	r.cxt = h->w.step_cxt;
	if (buildlog_worker_run_step(&h->w, "GET /jobs/{id}/events", buildlog_http_read_step, &call) ==
		WORKER_STEP_ERROR)
		return false;
	if (r.status != MHD_HTTP_OK || r.body == NULL)
	{
		answer_failed(h, st, r.status);
		wake_stream(st);
		return true;
	}
	st->end_failed = true;
	st->answer_left = r.len;
	old = MemoryContextSwitchTo(h->w.loop_cxt);
	ok = feed_records(st, r.body, false);
	MemoryContextSwitchTo(old);
	if (!ok || (st->answer_left > 0 && !st->ending))
		answer_failed(h, st, r.status);
	else
		answer_done(h, st);
	wake_stream(st);
	return true;
}

/*
 * Start a stream's read (its backlog, its end, or parts held back): handed
 * to a reader, or queued until a read slot frees (a turn of the loop hands
 * it on); read here only when no reader is configured, so a burst of new
 * streams of a big log never stalls the loop that serves every client.
 * False when a read here failed (w.error).
 */
static bool
start_read(HttpWorker *h, EventStream *st)
{
	if (request_read(h, st))
		return true;
	if (buildlog_http_readers > 0)
	{
		st->read_wanted = true;
		return true;
	}
	return read_here(h, st);
}

/* Give back a drained stream's big buffer: idle streams stay small. */
static void
shrink_buffer(HttpWorker *h, EventStream *st)
{
	if (unsent(st) > 0 || st->out.maxlen <= OUT_KEEP)
		return;
	pfree(st->out.data);
	st->out.data = MemoryContextAlloc(h->w.loop_cxt, OUT_INITIAL);
	st->out.maxlen = OUT_INITIAL;
	resetStringInfo(&st->out);
	st->handed = 0;
}

bool
buildlog_http_events_start(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
						   const TokenClaims *claims, unsigned int *status, const char **error)
{
	const char *cursor = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);
	EventStream *st = palloc0(sizeof(EventStream));
	struct MHD_Response *resp;

	st->h = h;
	st->conn = conn;
	st->job_id = job_id;
	st->read_slot = -1;
	st->answer_fd = -1;
	if (claims != NULL)
	{
		st->has_token = true;
		st->claims = *claims;
	}
	st->capacity = 8;
	st->ranges = palloc(sizeof(NumberRange) * st->capacity);
	/* small at first: most streams are idle most of the time */
	st->out.data = palloc(OUT_INITIAL);
	st->out.maxlen = OUT_INITIAL;
	resetStringInfo(&st->out);
	MemoryContextSwitchTo(old);
	*status = MHD_HTTP_OK;
	if (cursor != NULL && !parse_cursor(st, cursor, error))
		*status = MHD_HTTP_BAD_REQUEST;
	else if (cursor == NULL && after != NULL)
	{
		int64		n;

		if (!buildlog_http_parse_int(after, -1, PG_INT32_MAX, &n))
		{
			*error = "after must be a part number (an integer from -1 to 2147483647).";
			*status = MHD_HTTP_BAD_REQUEST;
		}
		else if (n >= 0)
		{
			st->ranges[0].lo = 0;
			st->ranges[0].hi = (int32) n;
			st->nranges = 1;
		}
	}
	if (*status == MHD_HTTP_OK &&
		pg_atomic_read_u64(&h->stats->streams) >= (uint64) h->max_streams)
	{
		buildlog_http_stream_refused();
		*error = psprintf("The service holds its most event streams (%d), keeping room for other requests; try again.",
						  h->max_streams);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	else if (*status == MHD_HTTP_OK && !buildlog_http_stream_admit(conn, &st->client))
	{
		*error = psprintf("This client holds buildlog.http_max_streams_per_client (%d) event streams; try again once one is closed.",
						  buildlog_http_max_streams_per_client);
		*status = MHD_HTTP_TOO_MANY_REQUESTS;
	}
	if (*status != MHD_HTTP_OK)
	{
		pfree(st->out.data);
		pfree(st->ranges);
		pfree(st);
		return true;
	}
	{
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		st->fd = fd ? fd->connect_fd : -1;
	}
	/* watch first: a commit after this wakes us, one before it is in the backlog */
	buildlog_live_watch(job_id, 1);
	pg_atomic_fetch_add_u64(&h->stats->streams, 1);
	dlist_push_tail(&h->streams, &st->node);
	{
		bool		found;
		WatchedJob *job = hash_search(h->watched, &job_id, HASH_ENTER, &found);

		if (!found)
			dlist_init(&job->streams);
		dlist_push_tail(&job->streams, &st->job_node);
	}
	MemoryContextSwitchTo(h->w.loop_cxt);
	appendStringInfoString(&st->out, "retry: 1000\n\n");
	MemoryContextSwitchTo(old);
	/* the backlog from a reader (it may be big, or in S3), else read here */
	if (!start_read(h, st))
	{
		free_stream(st);
		return false;
	}
	st->last_write = GetCurrentTimestamp();
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK, read_stream,
											 st, free_stream);
	if (resp == NULL)
	{
		free_stream(st);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		*error = "Out of memory for a new stream.";
		return true;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	pg_atomic_fetch_add_u64(&h->stats->responses_2xx, 1);
	*status = 0;				/* queued here */
	return true;
}

/* Is the stream waiting for nothing but live parts? */
static bool
stream_live(EventStream *st)
{
	return !st->ending && st->read_slot < 0 && st->answer_fd < 0 && !st->read_wanted;
}

/*
 * The new parts of several jobs in one query (columns job_id, number,
 * content, final; ordered by job and number): $1 the jobs, $2 the number
 * above which each is read.  A job whose parts are all still pending (no
 * content, nothing merged or purged: the live case) is read straight from
 * log_parts, one copy per number chosen as parts() chooses it (the first by
 * arrival time, then bytes; final if any copy is); any other goes through
 * parts() itself, the one read path.  One executor start for all jobs:
 * parts() per job opened every partition of log_parts twice per job, which
 * made a refill of 100 jobs take 20-100 ms.
 */
#define LIVE_PARTS_SQL \
	"select j.job_id, p.number, p.content, p.final" \
	" from rows from (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int4[])) j(job_id, after)" \
	" cross join lateral (select distinct on (q.number) q.number, q.content," \
	"   pg_catalog.bool_or(q.final) over (partition by q.number) as final" \
	"   from buildlog.log_parts q where q.job_id = j.job_id and q.number > j.after" \
	"   order by q.number, q.created_at, q.content collate \"C\") p" \
	" where not exists (select from buildlog.logs l where l.job_id = j.job_id" \
	"   and (l.content is not null or l.purged_at is not null" \
	"        or pg_catalog.cardinality(l.part_numbers) > 0))" \
	" union all" \
	" select j.job_id, p.number, p.content, p.final" \
	" from rows from (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int4[])) j(job_id, after)" \
	" join buildlog.logs l on l.job_id = j.job_id" \
	"   and (l.content is not null or l.purged_at is not null" \
	"        or pg_catalog.cardinality(l.part_numbers) > 0)" \
	" cross join lateral buildlog.parts(j.job_id, j.after) p" \
	" order by 1, 2"

static SPIPlanPtr live_plan = NULL;

/* The lowest prefix end among a job's live streams (PG_INT32_MAX: none). */
static int32
job_after(WatchedJob *job)
{
	int32		after = PG_INT32_MAX;
	dlist_iter	iter;

	dlist_foreach(iter, &job->streams)
	{
		EventStream *st = dlist_container(EventStream, job_node, iter.cur);

		if (stream_live(st))
			after = Min(after, prefix_end(st));
	}
	return after;
}

/* Hand a job's new parts (ev[0..n-1]) to its live streams; complete ones want their end. */
static void
feed_job(BuildlogWorker *w, WatchedJob *job, PartEvent *ev, int n)
{
	MemoryContext old = MemoryContextSwitchTo(w->loop_cxt);
	dlist_iter	iter;

	dlist_foreach(iter, &job->streams)
	{
		EventStream *st = dlist_container(EventStream, job_node, iter.cur);

		if (stream_live(st))
		{
			append_new_parts(st, ev, n);
			/* its end event (the whole log's digest) comes from a reader */
			if (stream_complete(st) && !st->end_failed)
				st->end_wanted = true;
		}
	}
	MemoryContextSwitchTo(old);
}

/* Step: new parts for each job written since the last refill, to its streams. */
static int
refill_step(BuildlogWorker *w, void *arg)
{
	Refill	   *refill = (Refill *) arg;
	HttpWorker *h = (HttpWorker *) w;
	Datum	   *ids = palloc(sizeof(Datum) * Max(refill->njobs, 1));
	Datum	   *afters = palloc(sizeof(Datum) * Max(refill->njobs, 1));
	int			n = 0;
	Oid			types[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[2];
	PartEvent  *ev;
	int64	   *job_of;
	uint64		nrows;
	uint64		i;

	for (int k = 0; k < refill->njobs; k++)
	{
		int32		after = job_after(refill->jobs[k]);

		if (after == PG_INT32_MAX)
			continue;			/* no stream of the job takes live parts */
		ids[n] = Int64GetDatum(refill->jobs[k]->job_id);
		afters[n] = Int32GetDatum(after);
		n++;
	}
	if (n == 0)
		return 0;
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(afters, n, INT4OID, 4, true, TYPALIGN_INT));
	buildlog_worker_begin_spi("buildlog http: live parts");
	buildlog_run(buildlog_plan(&live_plan, LIVE_PARTS_SQL, 2, types),
				 values, NULL, true, SPI_OK_SELECT);
	/* every row as an event first (escaped once for all the job's streams) */
	nrows = SPI_processed;
	ev = palloc(sizeof(PartEvent) * Max(nrows, 1));
	job_of = palloc(sizeof(int64) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
	{
		bool		isnull;

		job_of[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		part_event_at(i, 2, &ev[i]);
	}
	/* then to the streams, job by job (end events run queries of their own) */
	for (i = 0; i < nrows;)
	{
		uint64		j = i;
		WatchedJob *job;

		while (j < nrows && job_of[j] == job_of[i])
			j++;
		job = hash_search(h->watched, &job_of[i], HASH_FIND, NULL);
		if (job != NULL)
			feed_job(w, job, &ev[i], (int) (j - i));
		i = j;
	}
	/* a job with no new row may still have become complete for a stream */
	for (int k = 0; k < refill->njobs; k++)
		feed_job(w, refill->jobs[k], NULL, 0);
	buildlog_worker_commit_spi();
	return 0;
}

/* The end event of a complete stream: from a reader, or read here. */
static void
send_end(HttpWorker *h, EventStream *st)
{
	st->end_wanted = false;
	if (!start_read(h, st))
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		st->end_wanted = true;	/* again at the next turn */
	}
}

/*
 * The watched jobs written since the last refill, their dirty bits cleared
 * before they are read (a commit after the clear marks them again).
 */
static Refill
dirty_jobs(HttpWorker *h)
{
	Refill		refill = {NULL, 0};
	HASH_SEQ_STATUS seq;
	WatchedJob *job;

	refill.jobs = palloc(sizeof(WatchedJob *) * Max(hash_get_num_entries(h->watched), 1));
	hash_seq_init(&seq, h->watched);
	while ((job = hash_seq_search(&seq)) != NULL)
		if (buildlog_live_dirty(job->job_id))
			refill.jobs[refill.njobs++] = job;
	/* clear only after collecting: jobs sharing a bit are all read */
	for (int i = 0; i < refill.njobs; i++)
		buildlog_live_clear(refill.jobs[i]->job_id);
	return refill;
}

void
buildlog_http_events_revoke(HttpWorker *h)
{
	dlist_iter	iter;

	dlist_foreach(iter, &h->streams)
	{
		EventStream *st = dlist_container(EventStream, node, iter.cur);

		if (st->has_token && !st->ending && buildlog_http_revoked(&st->claims))
		{
			MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

			appendStringInfoString(&st->out, ": the token was revoked\n\n");
			MemoryContextSwitchTo(old);
			st->ending = true;
			wake_stream(st);
		}
	}
}

/*
 * Has the client of a suspended stream closed its socket?  libmicrohttpd
 * does not poll a suspended connection, so without this a gone client
 * would keep its slot until the next heartbeat.
 */
static bool
client_gone(EventStream *st)
{
	char		b;
	ssize_t		n;

	if (st->fd < 0)
		return false;
	n = recv(st->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void
buildlog_http_events_refill(HttpWorker *h)
{
	static TimestampTz next_peek = 0;
	TimestampTz now = GetCurrentTimestamp();
	uint64		wakeups = buildlog_live_wakeups();
	dlist_iter	iter;
	bool		peek = now >= next_peek;

	if (dlist_is_empty(&h->streams))
	{
		h->seen_wakeups = wakeups;
		return;
	}
	if (wakeups != h->seen_wakeups)
	{
		Refill		refill = dirty_jobs(h);

		h->seen_wakeups = wakeups;
		if (refill.njobs > 0 &&
			buildlog_worker_run_step(&h->w, "reading live parts", refill_step, &refill) ==
			WORKER_STEP_ERROR)
		{
			/* nothing of it is lost: mark them again, retry at the next turn */
			buildlog_worker_problem(&h->w, WARNING, h->w.error);
			for (int i = 0; i < refill.njobs; i++)
				buildlog_live_mark(refill.jobs[i]->job_id);
			h->seen_wakeups = wakeups - 1;
		}
	}
	dlist_foreach(iter, &h->streams)
	{
		EventStream *st = dlist_container(EventStream, node, iter.cur);

		/* a read queued for want of a free slot */
		if (st->read_wanted && !st->ending && request_read(h, st))
			st->read_wanted = false;
		/* backpressure: more of its answer, or the parts held back, once drained */
		if (st->answer_fd >= 0 && unsent(st) < STREAM_MAX_UNSENT / 2)
			feed_more(h, st);
		else if (st->held && unsent(st) == 0 && stream_live(st))
		{
			st->held = false;
			if (!start_read(h, st))
			{
				buildlog_worker_problem(&h->w, WARNING, h->w.error);
				st->held = true;	/* again at the next turn */
			}
		}
		shrink_buffer(h, st);
		/* once a second: a suspended stream whose client left ends now */
		if (peek && st->suspended && !st->ending && client_gone(st))
			st->ending = true;
		if (st->end_wanted && stream_live(st))
			send_end(h, st);
		if (st->out.len > st->handed || st->ending)
			st->last_write = now;
		else if (TimestampDifferenceExceeds(st->last_write, now, HEARTBEAT_S * 1000))
		{
			MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

			appendStringInfoString(&st->out, ": keep-alive\n\n");
			MemoryContextSwitchTo(old);
			st->last_write = now;
		}
		wake_stream(st);
	}
	if (peek)
		next_peek = TimestampTzPlusMilliseconds(now, 1000);
}
