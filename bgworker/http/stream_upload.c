/*-------------------------------------------------------------------------
 * stream_upload.c
 *	  POST /jobs/{id}/stream: a runner pipes its raw output in one (chunked)
 *	  request, resumable by byte offset.
 *
 * The body is cut into numbered parts while the request is open: a part is
 * written once the oldest byte not yet stored has waited
 * buildlog.http_flush_ms, or once 64 kB (at most a third of
 * buildlog.max_part_bytes, so cleaning never makes it too large) are
 * pending, whichever comes first.  The worker's loop asks
 * buildlog_http_stream_timers() how long it may sleep, so a flush happens on
 * time even when no byte arrives.  Parts are cut at UTF-8 character
 * boundaries; an incomplete sequence at the end waits for the next bytes.
 * Each part is cleaned like the drain cleans (U+FFFD, counted) and written
 * through the one ingest path by the group commit (uploads.c), so live
 * watchers see it within milliseconds.
 *
 * Resume: the offset held is counted in raw body bytes (what the runner
 * sent).  The group commit stores it with the parts it covers
 * (buildlog.stream_offsets), so it is read from the database, never from
 * this worker's memory or the log's text: it survives a restart of the
 * worker and a failover.  A log the service did not stream has no offset:
 * an empty one holds 0; otherwise the raw offset is only known to lie
 * between a third of the stored size (each U+FFFD may stand for one raw
 * byte) and the stored size.  HEAD /jobs/{id}/stream tells it
 * (Upload-Offset); a request names its start with Content-Range: bytes
 * N-*\/\* or ?offset=N, and any other start than the offset held answers
 * 416 with the offset held.  Numbers continue after the highest one stored.
 *
 * Before an offset is read, the job's writes in flight are committed: the
 * request waits, suspended, while the job's other streams pause (they read
 * no more of their bodies), and is resumed once those writes are decided.  A clean end of the body writes a final
 * part (?final=0: not); a request cut off keeps every complete character
 * it delivered and is not final.  The answer (after the last commit) is
 * JSON of what was stored.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http/auth.h"
#include "http/limits.h"
#include "http/stream_upload.h"
#include "http/uploads.h"
#include "job_secrets.h"
#include "mask.h"
#include "spiutil.h"
#include "stream_offsets.h"
#include "wire.h"

#define STREAM_PART_BYTES	(64 * 1024)
/*
 * Backpressure: a stream whose bytes received but not committed reach this
 * is suspended (libmicrohttpd then reads no more of its socket) until its
 * writes have brought them under half of it.
 */
#define STREAM_MAX_BACKLOG	(4 * 1024 * 1024)
#define STREAM_TIMEOUT_S	1800	/* a silent build may pause this long */

/* A job's stream writes handed to the group commit and not yet decided. */
typedef struct StreamJob
{
	int64		job_id;			/* hash key */
	int			inflight;
} StreamJob;

/*
 * A stream request (HEAD, POST or PUT) waiting, suspended, for the job's
 * writes before its offset is read; libmicrohttpd's per-request pointer.
 */
typedef struct StreamWait
{
	HttpUploadKind kind;		/* HTTP_KIND_STREAM_WAIT */
	dlist_node	node;			/* in h->stream_waits */
	struct MHD_Connection *conn;
	int64		job_id;
} StreamWait;

/*
 * (StreamWait and StreamUpload open alike on purpose: both are what
 * libmicrohttpd's per-request pointer holds, so both start with their kind.)
 */

/* One POST /jobs/{id}/stream being read (in the worker's loop context). */
typedef struct StreamUpload
{
	HttpUploadKind kind;		/* HTTP_KIND_STREAM */
	dlist_node	node;			/* in h->uploads */
	struct MHD_Connection *conn;
	uint64		serial;
	int64		job_id;
	TokenScope	scope;
	TokenClaims claims;			/* its token (a revocation ends it) */
	bool		final_at_end;
	int64		start;			/* the offset this request began at */
	int64		received;		/* raw bytes received */
	int64		taken;			/* raw bytes handed to writes */
	int64		stored_raw;		/* raw bytes of committed writes */
	int32		next_number;
	int32		mask_hold;		/* the job's longest secret match, 0: none */
	bool		closing;		/* cut off: the last flush holds nothing back */
	StringInfoData pending;		/* received, not yet handed to a write */
	TimestampTz due;			/* when pending must be written; 0: no bytes */
	int			inflight;		/* writes waiting for the group commit */
	bool		ended;			/* the body is complete */
	bool		suspended;		/* waiting for its writes' commit */
	bool		refused;		/* its error answer was queued */
	bool		discarding;		/* failed mid-body: the rest is dropped */
	bool		backpressured;	/* suspended until its backlog is written */
	unsigned int fail_status;	/* a write failed, or another request took over */
	const char *fail_title;
	char	   *fail_detail;
	int64		parts;
	int64		bytes;
	int64		replaced;
	bool		final_written;
} StreamUpload;

/* What the begin step reads about the job. */
typedef struct StreamState
{
	int64		job_id;
	bool		final;
	bool		has_offset;		/* a stream of the service wrote it */
	int64		offset;			/* then: raw bytes stored */
	int64		size;			/* else: stored log bytes */
	int32		next_number;
	int32		mask_hold;		/* buildlog_job_mask_hold() */
} StreamState;

static SPIPlanPtr state_plan = NULL;
static SPIPlanPtr state_plan_no_offsets = NULL;

void
buildlog_http_stream_init(HttpWorker *h)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(StreamJob);
	ctl.hcxt = h->w.loop_cxt;
	h->stream_jobs = hash_create("buildlog http stream jobs", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	dlist_init(&h->stream_waits);
	dlist_init(&h->uploads);
	dlist_init(&h->group);
	h->group_cxt = AllocSetContextCreate(h->w.loop_cxt, "buildlog http group",
										 ALLOCSET_DEFAULT_SIZES);
}

/* The largest raw slice of one part: cleaning may triple invalid bytes. */
static size_t
part_bytes(void)
{
	return Min(STREAM_PART_BYTES, Max(buildlog_max_part_bytes / 3, 4));
}

/*
 * How many bytes at the end of b start a multi-byte character that is not
 * complete yet (0..3): they wait for the next bytes.
 */
static size_t
incomplete_tail(const unsigned char *b, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++)
	{
		unsigned char c = b[len - back];
		size_t		need;

		if ((c & 0xC0) == 0x80)
			continue;			/* a continuation byte: look further back */
		need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 :
			c >= 0xC2 && c <= 0xDF ? 2 : 1;
		return back < need ? back : 0;
	}
	return 0;
}

/* A cut at or below limit that does not split a character (if there is one). */
static size_t
char_boundary(const unsigned char *b, size_t limit)
{
	for (size_t cut = limit; cut + 3 >= limit && cut > 0; cut--)
		if ((b[cut] & 0xC0) != 0x80)
			return cut;
	return limit;
}

static void stream_flush(HttpWorker *h, StreamUpload *s, bool end);

/* The open stream of this serial, or NULL (gone). */
static StreamUpload *
find_upload(HttpWorker *h, uint64 serial)
{
	dlist_iter	it;

	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (s->serial == serial)
			return s;
	}
	return NULL;
}

/* Fail the stream (once): its next call answers this. */
static void
stream_fail(HttpWorker *h, StreamUpload *s, unsigned int status, const char *title,
			const char *detail)
{
	if (s->fail_status != 0)
		return;
	s->fail_status = status;
	s->fail_title = title;
	s->fail_detail = MemoryContextStrdup(h->w.loop_cxt, detail);
	resetStringInfo(&s->pending);
	s->due = 0;
}

/* Raw bytes a stream received and the database does not hold yet. */
static int64
backlog(StreamUpload *s)
{
	return s->pending.len + (s->taken - s->stored_raw);
}

/* Count a job's stream writes handed to the group commit (delta +1 / -1). */
static void
job_inflight(HttpWorker *h, int64 job_id, int delta)
{
	bool		found;
	StreamJob  *j = hash_search(h->stream_jobs, &job_id, delta > 0 ? HASH_ENTER : HASH_FIND,
								&found);

	if (j == NULL)
		return;
	if (!found)
		j->inflight = 0;
	j->inflight += delta;
	if (j->inflight <= 0)
		hash_search(h->stream_jobs, &job_id, HASH_REMOVE, NULL);
}

/* Does a stream request wait for this job's writes (its streams pause then)? */
static bool
job_waited_for(HttpWorker *h, int64 job_id)
{
	dlist_iter	it;

	dlist_foreach(it, &h->stream_waits)
		if (dlist_container(StreamWait, node, it.cur)->job_id == job_id)
			return true;
	return false;
}

/* Resume a stream suspended for backpressure or a pause once it may go on. */
static void
maybe_resume(HttpWorker *h, StreamUpload *s)
{
	if (s->backpressured && !job_waited_for(h, s->job_id) &&
		(backlog(s) < STREAM_MAX_BACKLOG / 2 || s->fail_status != 0))
	{
		s->backpressured = false;
		MHD_resume_connection(s->conn); /* its body again, where it stopped */
	}
}

/*
 * Is everything the job's streams received decided by the group commit?
 * If not, their pending bytes are handed to it now.
 */
static bool
job_settled(HttpWorker *h, int64 job_id)
{
	bool		found;
	dlist_iter	it;

	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (s->job_id == job_id && !s->ended && s->pending.len > 0)
			stream_flush(h, s, false);
	}
	(void) hash_search(h->stream_jobs, &job_id, HASH_FIND, &found);
	if (found)
		buildlog_http_group_commit(h);
	return !found;
}

/* Resume the requests waiting for the job's writes once they are all decided. */
static void
wake_waits(HttpWorker *h, int64 job_id)
{
	dlist_mutable_iter it;
	bool		found;

	(void) hash_search(h->stream_jobs, &job_id, HASH_FIND, &found);
	if (found)
		return;
	dlist_foreach_modify(it, &h->stream_waits)
	{
		StreamWait *wait = dlist_container(StreamWait, node, it.cur);

		if (wait->job_id == job_id && wait->conn != NULL)
		{
			MHD_resume_connection(wait->conn);
			wait->conn = NULL;	/* resumed: its request carries on */
		}
	}
}

/*
 * A stream's write is decided: on success the job's offset moves on; the
 * request (if still open) counts it, and once its body is complete and
 * nothing is in flight, it is resumed to answer.
 */
static void
stream_written(HttpWorker *h, GroupWrite *g)
{
	StreamUpload *s = find_upload(h, g->serial);

	job_inflight(h, g->job_id, -1);
	wake_waits(h, g->job_id);
	if (g->status == 0)
		pg_atomic_fetch_add_u64(&h->stats->stream_bytes, g->raw);
	if (s == NULL)
		return;
	s->inflight--;
	if (g->status == 0)
	{
		s->stored_raw += g->raw;
		s->parts += g->parts;
		s->bytes += g->batch.bytes;
		s->replaced += g->replaced;
		s->mask_hold = Max(s->mask_hold, g->mask_hold);
		for (int i = 0; i < g->batch.n; i++)
			if (DatumGetBool(g->batch.finals[i]))
				s->final_written = true;
	}
	else
		stream_fail(h, s, g->status, g->title, g->detail);
	if (s->ended && s->inflight == 0 && s->suspended)
	{
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
	else
		maybe_resume(h, s);
}

/*
 * How many of the first take pending bytes to hold back so that no secret
 * of the job is cut by this flush: a match never spans a line break (a
 * secret is registered line by line), so at most the unfinished last line,
 * and at most mask_hold - 1 bytes of it, starting at a character.
 */
static size_t
mask_holdback(StreamUpload *s, const unsigned char *b, size_t take)
{
	size_t		line = take;
	size_t		hold;

	/* a command in the stream registers a secret this flush cannot know yet */
	if (memmem(b, take, MASK_COMMAND, MASK_COMMAND_LEN) != NULL)
		s->mask_hold = Max(s->mask_hold, 3 * MASK_SECRET_MAX_LEN);
	if (s->mask_hold <= 1 || s->closing)
		return 0;
	while (line > 0 && b[line - 1] != '\n' && b[line - 1] != '\r')
		line--;
	hold = Min(take - line, (size_t) s->mask_hold - 1);
	while (hold > 0 && hold < take && (b[take - hold] & 0xC0) == 0x80)
		hold++;					/* start at a character */
	return hold;
}

/*
 * Hand the pending bytes to a write for the next group commit, in parts of
 * at most part_bytes() cut at character boundaries.  Not at the end of a
 * final body, an incomplete trailing character stays pending; at the end of
 * a final body it is cleaned with the rest and the last part is final (an
 * empty one if nothing is pending).
 */
static void
stream_flush(HttpWorker *h, StreamUpload *s, bool end)
{
	const unsigned char *b = (const unsigned char *) s->pending.data;
	bool		final = end && s->final_at_end;
	size_t		keep = final ? 0 : incomplete_tail(b, s->pending.len);
	size_t		take = s->pending.len - keep;
	size_t		limit = part_bytes();
	size_t	   *cuts;
	int			n = 0;
	size_t		at = 0;
	PartBatch	batch;
	int64		replaced = 0;
	GroupWrite *g;
	MemoryContext old;

	s->due = 0;
	if (!end)
	{
		size_t		hold = mask_holdback(s, b, take);

		take -= hold;
		keep += hold;
	}
	if (s->fail_status != 0 || (take == 0 && !final))
		return;
	/* the parts' ends: each cut advances at least limit - 3 bytes */
	cuts = MemoryContextAlloc(h->group_cxt, sizeof(size_t) * (take / (limit - 3) + 2));
	while (at < take)
	{
		size_t		cut = take - at <= limit ? take : at + char_boundary(b + at, limit);

		cuts[n++] = cut;
		at = cut;
	}
	if (n == 0)
		cuts[n++] = 0;			/* the empty final part */
	old = MemoryContextSwitchTo(h->group_cxt);
	buildlog_batch_init(&batch, n);
	at = 0;
	for (int i = 0; i < n; i++)
	{
		size_t		len = cuts[i] - at;
		char	   *buf = palloc(VARHDRSZ + len + 1);
		ParsedPart	part;

		memcpy(buf + VARHDRSZ, b + at, len);
		memset(&part, 0, sizeof(part));
		buildlog_part_content(&part, "stream", buf, len, false, buildlog_max_part_bytes);
		if (!part.ok)
		{
			/* only with a max_part_bytes below 4 bytes */
			MemoryContextSwitchTo(old);
			stream_fail(h, s, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large", part.reason);
			return;
		}
		buildlog_batch_add(&batch, s->job_id, s->next_number + i, PointerGetDatum(part.content),
						   final && i == n - 1);
		replaced += part.replaced;
		at = cuts[i];
	}
	MemoryContextSwitchTo(old);
	g = buildlog_http_group_add(h, s->job_id, s->scope, &batch);
	g->replaced = replaced;
	s->next_number += n;
	g->raw = take;
	g->serial = s->serial;
	g->done = stream_written;
	s->taken += take;
	s->inflight++;
	g->raw_end = s->start + s->taken;
	g->next_number = s->next_number;
	job_inflight(h, s->job_id, 1);
	/* keep the incomplete character */
	memmove(s->pending.data, s->pending.data + take, keep);
	s->pending.len = keep;
	s->pending.data[keep] = '\0';
}

/*
 * Step: what the job holds: final?  The stream's stored offset, or else the
 * stored size (sizes only: no text is read); the next number.  Index
 * lookups, whatever the log's size.
 */
static int
state_step(BuildlogWorker *w, void *arg)
{
	StreamState *st = (StreamState *) arg;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(st->job_id)};
	bool		offsets;
	bool		isnull;
	Datum		d;

	buildlog_worker_begin_spi("buildlog http: POST /jobs/{id}/stream");
	offsets = buildlog_stream_offsets_present();
#define STATE_SQL(OFFSET, NEXT, JOIN) \
	"select coalesce(l.final_number is not null, false)" \
	"  or exists (select 1 from buildlog.log_parts p where p.job_id = $1 and p.final)," \
	" " OFFSET "," \
	" case when " OFFSET " is not null then null" \
	"      when l.purged_at is not null then coalesce(l.archive_size, 0)" \
	"      else coalesce(octet_length(l.content), 0)::int8" \
	"         + coalesce((select sum(octet_length(d.content)) from" \
	"             (select distinct on (p.number) p.content from buildlog.log_parts p" \
	"               where p.job_id = $1 and not (p.number = any (coalesce(l.part_numbers, '{}')))" \
	"               order by p.number) d), 0) end," \
	" greatest(" NEXT " - 1," \
	"          (select max(number) from buildlog.log_parts where job_id = $1 and number < 2147483647)," \
	"          (select max(n) from unnest(l.part_numbers) n where n < 2147483647))" \
	" from (values (1)) one(x)" \
	" left join buildlog.logs l on l.job_id = $1" JOIN
	if (offsets)
		buildlog_run(buildlog_plan(&state_plan,
								   STATE_SQL("o.raw_bytes", "o.next_number",
											 " left join buildlog.stream_offsets o on o.job_id = $1"),
								   1, types),
					 values, NULL, true, SPI_OK_SELECT);
	else
		buildlog_run(buildlog_plan(&state_plan_no_offsets,
								   STATE_SQL("null::int8", "null::int4", ""), 1, types),
					 values, NULL, true, SPI_OK_SELECT);
#undef STATE_SQL
	st->final = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	st->has_offset = !isnull;
	st->offset = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	st->size = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	st->next_number = isnull ? 0 : DatumGetInt32(d) + 1;
	st->mask_hold = buildlog_job_mask_hold(st->job_id);
	buildlog_worker_commit_spi();
	return 0;
}

/*
 * The start the request names: Content-Range: bytes N-... or ?offset=N
 * (0 without either); false with a 400 in r when malformed or they differ.
 */
static bool
requested_offset(struct MHD_Connection *conn, HttpResponse *r, int64 *offset)
{
	const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													MHD_HTTP_HEADER_CONTENT_RANGE);
	const char *query = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "offset");
	const char *end = "";
	int64		from_range = -1;
	int64		from_query = -1;

	if (range != NULL)
	{
		if (strncmp(range, "bytes ", 6) != 0 ||
			(from_range = buildlog_http_parse_offset(range + 6, &end)) < 0 || *end != '-')
		{
			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  "Content-Range must be \"bytes N-*/*\": N is the offset this body starts at.");
			return false;
		}
	}
	if (query != NULL && ((from_query = buildlog_http_parse_offset(query, &end)) < 0 || *end != '\0'))
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "offset must be a byte offset (a non-negative integer).");
		return false;
	}
	if (from_range >= 0 && from_query >= 0 && from_range != from_query)
	{
		buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
							  "Content-Range and ?offset name different offsets.");
		return false;
	}
	*offset = from_range >= 0 ? from_range : Max(from_query, 0);
	return true;
}

/* Tell the offset held: Upload-Offset and GitLab's Range: 0-N. */
static void
offset_headers(HttpResponse *r, int64 held, int32 next_number)
{
	char		v[64];

	snprintf(v, sizeof(v), INT64_FORMAT, held);
	buildlog_http_add_header(r, "Upload-Offset", v);
	snprintf(v, sizeof(v), "0-" INT64_FORMAT, held);
	buildlog_http_add_header(r, "Range", v);
	snprintf(v, sizeof(v), "%d", next_number);
	buildlog_http_add_header(r, "X-Next-Part", v);
}

/* End the job's open streams: another request resumed the job's stream (409). */
static void
take_over(HttpWorker *h, int64 job_id)
{
	dlist_iter	it;

	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (s->job_id == job_id && !s->ended)
		{
			stream_fail(h, s, MHD_HTTP_CONFLICT, "Conflict",
						"Another request resumed this job's stream; this one is over.");
			maybe_resume(h, s); /* paused: to discard the rest */
		}
	}
}

/*
 * The raw offset held for the job: exact when its stream wrote it or the
 * log is empty; else *lo..*held bound it (each U+FFFD stands for 1 to 3 raw
 * bytes) and false.
 */
static bool
held_offset(StreamState *st, int64 *held, int64 *lo)
{
	if (st->has_offset || st->size == 0)
	{
		*held = *lo = st->has_offset ? st->offset : 0;
		return true;
	}
	*held = st->size;
	*lo = (st->size + 2) / 3;
	return false;
}

/*
 * Wait (suspended) for the job's writes in flight unless they are all
 * decided: true when this request now waits, with *state its StreamWait.
 */
static bool
wait_for_job(HttpWorker *h, struct MHD_Connection *conn, int64 job_id, void **state)
{
	StreamWait *wait;

	if (job_settled(h, job_id))
		return false;
	wait = MemoryContextAllocZero(h->w.loop_cxt, sizeof(StreamWait));
	wait->kind = HTTP_KIND_STREAM_WAIT;
	wait->conn = conn;
	wait->job_id = job_id;
	dlist_push_tail(&h->stream_waits, &wait->node);
	MHD_suspend_connection(conn);
	*state = wait;
	return true;
}

/* A waiting request's turn (resumed) or end (gone): free its wait; its job's streams go on. */
void
buildlog_http_stream_wait_free(HttpWorker *h, void *state)
{
	StreamWait *wait = (StreamWait *) state;
	int64		job_id = wait->job_id;
	dlist_iter	it;

	dlist_delete(&wait->node);
	pfree(wait);
	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (s->job_id == job_id)
			maybe_resume(h, s);
	}
}

bool
buildlog_http_stream_begin(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
						   bool head, HttpResponse *r, void **state)
{
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *final = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "final");
	TokenClaims claims;
	TokenScope	scope;
	StreamState st;
	StreamUpload *s;
	int64		offset = 0;
	int64		held;
	int64		lo;
	bool		exact;

	/* resumed after a wait: its job's writes are decided; check it all again */
	if (*state != NULL)
	{
		buildlog_http_stream_wait_free(h, *state);
		*state = NULL;
	}
	if (!buildlog_http_authorize(h, conn, job_id, TOKEN_WRITE, r, &claims))
		return false;
	scope = claims.scope;
	if (!head)
	{
		if (type != NULL && !buildlog_http_media_type_is(type, "text/plain") &&
			!buildlog_http_media_type_is(type, "application/octet-stream"))
		{
			buildlog_http_problem(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type",
								  "Stream the raw output as text/plain (or application/octet-stream).");
			return false;
		}
		if (!buildlog_http_has_length(conn, r))
			return false;
		if (final != NULL && strcmp(final, "0") != 0 && strcmp(final, "1") != 0 &&
			strcmp(final, "false") != 0 && strcmp(final, "true") != 0)
		{
			buildlog_http_problem(r, MHD_HTTP_BAD_REQUEST, "Bad Request",
								  "final must be 1 (the default: a clean end marks the log final) or 0.");
			return false;
		}
		if (!requested_offset(conn, r, &offset))
			return false;
	}
	if (wait_for_job(h, conn, job_id, state))
		return true;
	st.job_id = job_id;
	if (buildlog_worker_run_step(&h->w, "reading a stream's offset", state_step, &st) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  h->w.error_message);
		return false;
	}
	if (st.final && scope == TOKEN_WRITE)
	{
		buildlog_http_problem(r, MHD_HTTP_FORBIDDEN, "Forbidden",
							  "The job's final part is stored: its write tokens are no longer valid.");
		return false;
	}
	exact = held_offset(&st, &held, &lo);
	if (head)
	{
		if (exact)
		{
			offset_headers(r, held, st.next_number);
			buildlog_http_set_body(r, MHD_HTTP_OK, "text/plain; charset=utf-8",
								   MemoryContextStrdup(r->cxt, ""), 0);
		}
		else
		{
			char		v[64];

			snprintf(v, sizeof(v), INT64_FORMAT "-" INT64_FORMAT, lo, held);
			buildlog_http_add_header(r, "Upload-Offset-Range", v);
			buildlog_http_problem(r, MHD_HTTP_CONFLICT, "Conflict",
								  psprintf("The job's log was not streamed here, and the raw bytes it came from are not known (each U+FFFD may stand for 1 to 3): the raw offset is between %lld and %lld; resume at the offset you sent.",
										   (long long) lo, (long long) held));
		}
		return false;
	}
	if (offset < lo || offset > held || (exact && offset != held))
	{
		char		v[64];

		offset_headers(r, held, st.next_number);
		snprintf(v, sizeof(v), "bytes */" INT64_FORMAT, held);
		buildlog_http_add_header(r, "Content-Range", v);
		buildlog_http_problem(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, "Range Not Satisfiable",
							  psprintf("The stream of job %lld holds %lld bytes: send the bytes from offset %lld (Content-Range: bytes %lld-*/*).",
									   (long long) job_id, (long long) held, (long long) held, (long long) held));
		return false;
	}
	take_over(h, job_id);
	s = MemoryContextAllocZero(h->w.loop_cxt, sizeof(StreamUpload));
	s->kind = HTTP_KIND_STREAM;
	s->conn = conn;
	s->serial = ++h->stream_serial;
	s->job_id = job_id;
	s->scope = scope;
	s->claims = claims;
	s->final_at_end = final == NULL || strcmp(final, "1") == 0 || strcmp(final, "true") == 0;
	s->start = offset;
	s->next_number = st.next_number;
	s->mask_hold = st.mask_hold;
	{
		MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

		initStringInfo(&s->pending);
		MemoryContextSwitchTo(old);
	}
	dlist_push_tail(&h->uploads, &s->node);
	pg_atomic_fetch_add_u64(&h->stats->uploads, 1);
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int) STREAM_TIMEOUT_S);
	*state = s;
	return true;
}

bool
buildlog_http_stream_data(HttpWorker *h, void *state, const char *data, size_t *len,
						  HttpResponse *r)
{
	StreamUpload *s = (StreamUpload *) state;

	if (s->refused)
	{
		*len = 0;
		return true;			/* its answer is on its way: drop the rest */
	}
	if (s->fail_status == 0 && buildlog_http_max_stream_bytes > 0 &&
		s->start + s->received + (int64) *len > (int64) buildlog_http_max_stream_bytes * 1024)
		stream_fail(h, s, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large",
					psprintf("The job's stream may hold at most %d kB (buildlog.http_max_stream_bytes); nothing past it was stored.",
							 buildlog_http_max_stream_bytes));
	if (s->fail_status != 0)
	{
		/*
		 * libmicrohttpd cannot answer during an upload: the rest is
		 * discarded and the refusal sent at the body's end; the body gets
		 * buildlog.http_timeout to end, then the connection is closed (the
		 * client's retry is refused at once).
		 */
		if (!s->discarding)
		{
			s->discarding = true;
			buildlog_http_request_phase(s->conn, HTTP_PHASE_BODY);
		}
		*len = 0;
		return true;
	}
	if (backlog(s) >= STREAM_MAX_BACKLOG || job_waited_for(h, s->job_id))
	{
		/*
		 * backpressure, or a pause while a request waits to read the job's
		 * offset: these bytes stay with libmicrohttpd until resumed
		 */
		s->backpressured = true;
		s->due = GetCurrentTimestamp();
		MHD_suspend_connection(s->conn);
		return true;
	}
	appendBinaryStringInfo(&s->pending, data, (int) *len);
	s->received += *len;
	*len = 0;
	if (s->due == 0)
		s->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), buildlog_http_flush_ms);
	if ((size_t) s->pending.len >= part_bytes())
		s->due = GetCurrentTimestamp();
	return true;
}

/* (The same walk as events.c's over event streams, on purpose: each list holds its own type.) */
void
buildlog_http_stream_revoke(HttpWorker *h)
{
	dlist_iter	it;

	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (!s->ended && buildlog_http_revoked(&s->claims))
		{
			stream_fail(h, s, MHD_HTTP_UNAUTHORIZED, "Unauthorized",
						"The token was revoked (buildlog.revoke_tokens()) while this upload was open; nothing after that was stored. Ask for a new token.");
			/* the rest is discarded: the body gets http_timeout to end */
			s->discarding = true;
			buildlog_http_request_phase(s->conn, HTTP_PHASE_BODY);
			if (s->backpressured)
			{
				s->backpressured = false;
				MHD_resume_connection(s->conn);	/* to discard the rest */
			}
		}
	}
}

void
buildlog_http_stream_finish(HttpWorker *h, void *state, HttpResponse *r)
{
	StreamUpload *s = (StreamUpload *) state;
	StringInfoData answer;
	MemoryContext old;
	int64		held;

	if (s->refused)
		return;
	if (!s->ended)
	{
		s->ended = true;
		stream_flush(h, s, true);
	}
	if (s->fail_status == 0 && s->inflight > 0)
	{
		/* answered after the commit (stream_written resumes it) */
		s->suspended = true;
		MHD_suspend_connection(s->conn);
		return;
	}
	if (s->fail_status != 0)
	{
		s->refused = true;
		buildlog_http_problem(r, s->fail_status, s->fail_title, s->fail_detail);
		return;
	}
	held = s->start + s->stored_raw;
	offset_headers(r, held, s->next_number);
	old = MemoryContextSwitchTo(r->cxt);
	initStringInfo(&answer);
	appendStringInfo(&answer, "{\"parts\":" INT64_FORMAT ",\"bytes\":" INT64_FORMAT
					 ",\"replaced\":" INT64_FORMAT ",\"offset\":" INT64_FORMAT
					 ",\"received\":" INT64_FORMAT ",\"final\":%s,\"next_part\":%d}\n",
					 s->parts, s->bytes, s->replaced, held, s->received,
					 s->final_written ? "true" : "false", s->next_number);
	MemoryContextSwitchTo(old);
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/json", answer.data, answer.len);
}

void
buildlog_http_stream_free(HttpWorker *h, void *state, bool completed)
{
	StreamUpload *s = (StreamUpload *) state;

	/* cut off: keep every complete character it delivered, not final */
	if (!s->ended && s->fail_status == 0)
	{
		s->final_at_end = false;
		s->closing = true;
		stream_flush(h, s, false);
	}
	dlist_delete(&s->node);
	pg_atomic_fetch_sub_u64(&h->stats->uploads, 1);
	pfree(s->pending.data);
	if (s->fail_detail != NULL)
		pfree(s->fail_detail);
	pfree(s);
}

long
buildlog_http_stream_timers(HttpWorker *h)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;
	dlist_iter	it;

	dlist_foreach(it, &h->uploads)
	{
		StreamUpload *s = dlist_container(StreamUpload, node, it.cur);

		if (s->due == 0 || s->fail_status != 0)
			continue;
		if (s->due <= now)
			stream_flush(h, s, false);
		if (s->due != 0)
		{
			long		ms = (long) ((s->due - now + 999) / 1000);

			next = next < 0 ? Max(ms, 0) : Min(next, Max(ms, 0));
		}
	}
	return next;
}
