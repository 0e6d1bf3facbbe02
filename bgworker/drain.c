/*-------------------------------------------------------------------------
 * drain.c
 *	  The drain worker: batches deliveries, writes them in one transaction
 *	  through the ingest path, then acks them.
 *
 * Loop: gather up to buildlog.batch_size deliveries, buildlog.batch_bytes
 * or buildlog.flush_ms after the first, whichever comes first; parse them;
 * write good parts (buildlog_ingest) and rejected deliveries
 * (rejected_parts) in one transaction; commit; then one basic.ack with
 * multiple=true.
 *
 * A batch that fails with an ERROR is retried in halves, down to single
 * deliveries, each piece acked after its commit; a single delivery that
 * still fails is stored in rejected_parts with the error as its reason, so
 * a poison delivery never blocks the queue.  Errors that are not about the
 * data (disk full, lock timeouts, a cancel, the extension gone, or storing
 * the rejected row failing too) keep the rest of the batch unacked in
 * memory: the worker backs off (0.5 s .. 30 s), keeping the connection
 * alive with heartbeats, and retries it.  A broken connection is
 * re-established with capped exponential back-off.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "guc.h"
#include "ingest.h"
#include "rejected.h"
#include "amqp_client.h"
#include "drain.h"
#include "wire.h"
#include "shmem.h"
#include "worker.h"

#define BACKOFF_MIN_MS		500
#define BACKOFF_MAX_MS		30000	/* after failed batches */
#define CONNECT_BACKOFF_MAX_MS	5000	/* between connection attempts */
#define IDLE_WAIT_MS		1000

/* Everything one worker keeps between batches. */
typedef struct DrainWorker
{
	BuildlogWorker w;			/* the skeleton; w.step_cxt holds one batch,
								 * w.backoff paces retries of failed batches */
	int			index;			/* 0-based worker number */
	DrainStats *stats;
	AmqpLink	link;
	char	  **queues;
	int			nqueues;
	AmqpDelivery *deliveries;
	int			capacity;
	int			nworkers;		/* drain workers registered (queue split) */
	MemoryContext attempt_cxt;	/* reset for every write attempt */
	int			held;			/* deliveries kept for a retry, from [0] */
	TimestampTz retry_at;		/* when to retry them */
	WorkerBackoff connect;		/* between connection attempts */
	TimestampTz next_connect;
	int			url_next;		/* which URL of buildlog.amqp_url to try next */
	bool		checked;		/* extension seen since the last idle batch */
} DrainWorker;

/*
 * Register buildlog.drain_workers workers, at most slots of them; called
 * from _PG_init.  Each learns how many there are (they split the queues).
 */
void
buildlog_drain_register(int slots)
{
	int			n = Min(buildlog_drain_workers, Max(slots, 0));

	for (int i = 0; i < n; i++)
		buildlog_worker_register_n("drain", "buildlog_drain_main", i, true, n);
}

/* The queues this worker consumes: its share of buildlog.amqp_queues. */
static void
assign_queues(DrainWorker *w)
{
	char	   *problem;
	List	   *names;
	int			total;
	int			i;
	char		shown[BUILDLOG_TEXT_LEN] = "";
	MemoryContext old = MemoryContextSwitchTo(w->w.loop_cxt);

	names = buildlog_split_queues(buildlog_amqp_queues, &problem);
	if (names == NIL)
	{
		char		text[BUILDLOG_TEXT_LEN];

		/* the check hook refuses such values; only a default could get here */
		snprintf(text, sizeof(text), "buildlog.amqp_queues is not a valid list: %s", problem);
		buildlog_worker_problem(&w->w, WARNING, text);
	}
	total = list_length(names);
	w->queues = palloc0(sizeof(char *) * Max(total, 1));
	w->nqueues = 0;
	for (i = 0; i < total; i++)
	{
		/* split a longer list; share a shorter one */
		bool		mine = (total >= w->nworkers)
			? (i % w->nworkers == w->index)
			: (i == w->index % total);

		if (mine)
			w->queues[w->nqueues++] = pstrdup(list_nth(names, i));
	}
	for (i = 0; i < w->nqueues; i++)
	{
		if (i > 0)
			strlcat(shown, ",", sizeof(shown));
		strlcat(shown, w->queues[i], sizeof(shown));
	}
	buildlog_slot_set_text(&w->stats->slot, w->stats->queues, shown, NULL);
	MemoryContextSwitchTo(old);
}

/* Drop the broker connection (unacked deliveries are redelivered). */
static void
disconnect(DrainWorker *w)
{
	if (w->link.conn != NULL)
		buildlog_amqp_disconnect(&w->link);
	w->held = 0;				/* their tags died with the connection */
	pg_atomic_write_u32(&w->stats->connected, 0);
}

/*
 * Apply SIGHUP (batch settings take effect with the next batch) and
 * restart_workers(): re-read the settings, then reconnect.  True when
 * anything was reloaded.
 */
static bool
handle_config(DrainWorker *w)
{
	int			found = buildlog_worker_reload(&w->w);

	if (found & WORKER_RESTARTED)
	{
		disconnect(w);
		assign_queues(w);
		buildlog_backoff_reset(&w->connect);
		w->next_connect = 0;
		ereport(LOG, (errmsg("%s: settings reloaded, reconnecting", w->w.name)));
	}
	return found != 0;
}

/* Wait on the latch (and optionally the socket); serves interrupts. */
static int
wait_for(DrainWorker *w, long timeout_ms, bool socket)
{
	int			events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
	int			rc;

	if (socket)
		events |= WL_SOCKET_READABLE;
	rc = WaitLatchOrSocket(MyLatch, events,
						   socket ? buildlog_amqp_fd(&w->link) : PGINVALID_SOCKET,
						   Max(timeout_ms, 0), PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	buildlog_worker_check_interrupts();
	return rc;
}

/* Connect when due; false while disconnected. */
static bool
ensure_connected(DrainWorker *w)
{
	TimestampTz now;
	char	   *url;
	bool		ok;

	if (w->link.connected)
		return true;
	now = GetCurrentTimestamp();
	if (now < w->next_connect)
		return false;
	if (w->nqueues == 0)
	{
		w->next_connect = TimestampTzPlusMilliseconds(now, BACKOFF_MAX_MS);
		return false;
	}
	url = buildlog_amqp_url_nth(buildlog_amqp_url, w->url_next);
	ok = buildlog_amqp_connect(&w->link, url, w->queues, w->nqueues,
							   2 * buildlog_batch_size, buildlog_amqp_heartbeat_s);
	pfree(url);
	if (!ok)
	{
		char		text[AMQP_ERROR_LEN + 64];

		/* the next node of the list at once; after a whole round, back off */
		w->url_next = (w->url_next + 1) % buildlog_amqp_url_count(buildlog_amqp_url);
		snprintf(text, sizeof(text), "%s; %s", w->link.error,
				 w->url_next == 0 ? "retrying with back-off" : "trying the next URL");
		buildlog_worker_problem(&w->w, LOG, text);
		w->next_connect = w->url_next == 0 ?
			TimestampTzPlusMilliseconds(now, buildlog_backoff_next(&w->connect)) : 0;
		return false;
	}
	ereport(LOG, (errmsg("%s: consuming %s from %s",
						 w->w.name, w->stats->queues, w->link.where)));
	buildlog_worker_log_reset(&w->w.log);
	buildlog_backoff_reset(&w->connect);
	pg_atomic_write_u64(&w->stats->connected_since, (uint64) now);
	pg_atomic_write_u32(&w->stats->connected, 1);
	pg_atomic_fetch_add_u64(&w->stats->reconnects, 1);
	return true;
}

/* Handle a lost connection: note it and schedule the reconnect. */
static void
connection_lost(DrainWorker *w)
{
	char		text[AMQP_ERROR_LEN + 64];

	snprintf(text, sizeof(text), "%s; reconnecting", w->link.error);
	buildlog_worker_problem(&w->w, LOG, text);
	disconnect(w);
	/* its node may be gone: the next one of the list first */
	w->url_next = (w->url_next + 1) % buildlog_amqp_url_count(buildlog_amqp_url);
	buildlog_backoff_reset(&w->w.backoff);
	w->next_connect = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  buildlog_backoff_next(&w->connect));
}

/*
 * Gather one batch; returns the number of deliveries (0 when idle or when
 * the connection broke: those deliveries come back from the broker).
 */
static int
gather(DrainWorker *w)
{
	int			n = 0;
	TimestampTz deadline = 0;
	int			limit = Min(buildlog_batch_size, w->capacity);
	int64		bytes = 0;
	bool		waited_idle = false;

	while (n < limit)
	{
		int			r = buildlog_amqp_next(&w->link, &w->deliveries[n]);
		long		timeout;

		if (r < 0)
		{
			connection_lost(w);
			return 0;
		}
		if (r > 0)
		{
			bytes += w->deliveries[n].len;
			if (n++ == 0)
				deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   buildlog_flush_ms);
			else if (GetCurrentTimestamp() >= deadline)
				break;
			/* bounded by bytes too: arrays hold at most 1 GB */
			if (bytes >= buildlog_batch_bytes)
				break;
			continue;
		}
		if (buildlog_amqp_buffered(&w->link))
			continue;
		if (n == 0)
		{
			/* idle: wait once (heartbeats are served every second), then
			 * give the main loop a turn */
			if (waited_idle || ConfigReloadPending)
				break;
			waited_idle = true;
			timeout = IDLE_WAIT_MS;
		}
		else
		{
			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout <= 0)
				break;
		}
		wait_for(w, timeout, true);
	}
	return n;
}

/* The good parts of a batch, and its rejected deliveries' rows. */
typedef struct BatchArrays
{
	PartBatch	good;
	int64		stored;			/* parts written (none for removed logs) */
	int			nbad;
	Datum	   *r_queue;
	Datum	   *r_exchange;
	Datum	   *r_key;
	Datum	   *r_tag;
	Datum	   *r_redelivered;
	Datum	   *r_reason;
	Datum	   *r_body;
	int64		replaced;
} BatchArrays;

/* Room for n deliveries in the parallel arrays. */
static void
alloc_arrays(BatchArrays *b, int n)
{
	memset(b, 0, sizeof(*b));
	buildlog_batch_init(&b->good, n);
	b->r_queue = palloc(sizeof(Datum) * n);
	b->r_exchange = palloc(sizeof(Datum) * n);
	b->r_key = palloc(sizeof(Datum) * n);
	b->r_tag = palloc(sizeof(Datum) * n);
	b->r_redelivered = palloc(sizeof(Datum) * n);
	b->r_reason = palloc(sizeof(Datum) * n);
	b->r_body = palloc(sizeof(Datum) * n);
}

/* Add a delivery to the rejected rows, with its reason. */
static void
add_rejected(BatchArrays *b, AmqpDelivery *d, const char *reason)
{
	bytea	   *body = palloc(VARHDRSZ + d->len);

	SET_VARSIZE(body, VARHDRSZ + d->len);
	memcpy(VARDATA(body), d->body, d->len);
	b->r_queue[b->nbad] = CStringGetTextDatum(d->queue);
	b->r_exchange[b->nbad] = CStringGetTextDatum(d->exchange);
	b->r_key[b->nbad] = CStringGetTextDatum(d->routing_key);
	b->r_tag[b->nbad] = Int64GetDatum((int64) d->tag);
	b->r_redelivered[b->nbad] = BoolGetDatum(d->redelivered);
	b->r_reason[b->nbad] = CStringGetTextDatum(reason);
	b->r_body[b->nbad] = PointerGetDatum(body);
	b->nbad++;
}

/* Parse every delivery into good parts or rejected rows. */
static void
parse_batch(AmqpDelivery *d, int n, BatchArrays *b)
{
	int			i;

	alloc_arrays(b, n);
	for (i = 0; i < n; i++)
	{
		ParsedPart p;

		CHECK_FOR_INTERRUPTS();
		buildlog_parse_part(d[i].body, d[i].len, buildlog_max_part_bytes, false, &p);
		b->replaced += p.replaced;
		if (p.ok)
			buildlog_batch_add(&b->good, p.job_id, p.number, PointerGetDatum(p.content), p.final);
		else
			add_rejected(b, &d[i], p.reason);
	}
}

/* Text array from datums. */
static Datum
text_array(Datum *d, int n, Oid type)
{
	return PointerGetDatum(construct_array(d, n, type, -1, false, TYPALIGN_INT));
}

/* Write one parsed batch in the current transaction. */
static void
write_batch(BatchArrays *b)
{
	b->stored = buildlog_ingest_batch(&b->good).parts;
	if (b->nbad > 0)
	{
		Datum		arrays[7];

		arrays[0] = text_array(b->r_queue, b->nbad, TEXTOID);
		arrays[1] = text_array(b->r_exchange, b->nbad, TEXTOID);
		arrays[2] = text_array(b->r_key, b->nbad, TEXTOID);
		arrays[3] = PointerGetDatum(construct_array(b->r_tag, b->nbad, INT8OID, 8,
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		arrays[4] = PointerGetDatum(construct_array(b->r_redelivered, b->nbad,
													BOOLOID, 1, true, TYPALIGN_CHAR));
		arrays[5] = text_array(b->r_reason, b->nbad, TEXTOID);
		arrays[6] = text_array(b->r_body, b->nbad, BYTEAOID);
		buildlog_store_rejected(arrays);
	}
}

/* Update the worker's counters after a committed batch. */
static void
count_batch(DrainWorker *w, int n, BatchArrays *b)
{
	DrainStats *s = w->stats;

	pg_atomic_fetch_add_u64(&s->deliveries, n);
	pg_atomic_fetch_add_u64(&s->parts, (uint64) b->stored);
	pg_atomic_fetch_add_u64(&s->rejected, b->nbad);
	pg_atomic_fetch_add_u64(&s->replaced, b->replaced);
	pg_atomic_fetch_add_u64(&s->batches, 1);
	if ((uint64) n > pg_atomic_read_u64(&s->max_batch))
		pg_atomic_write_u64(&s->max_batch, n);
	pg_atomic_write_u64(&s->last_commit, (uint64) GetCurrentTimestamp());
}

/* How a write attempt ended. */
typedef enum WriteResult
{
	WRITE_OK,					/* committed (and acked, unless the link broke) */
	WRITE_DATA_ERROR,			/* an ERROR that may be caused by the data */
	WRITE_SYSTEM_ERROR			/* an ERROR about the system: retry later */
} WriteResult;

/*
 * Errors that say nothing about the deliveries: retrying the same data
 * later may succeed, so it is never split or rejected because of them.
 */
static bool
systemic_error(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40: deadlock, serialization */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57: cancel, shutdown */
		case ERRCODE_SYSTEM_ERROR:	/* 58: I/O errors */
			return true;
		default:
			break;
	}
	return sqlerrcode == ERRCODE_DISK_FULL ||
		sqlerrcode == ERRCODE_TOO_MANY_CONNECTIONS ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_UNDEFINED_TABLE ||	/* extension dropped */
		sqlerrcode == ERRCODE_UNDEFINED_OBJECT ||
		sqlerrcode == ERRCODE_UNDEFINED_FUNCTION ||
		sqlerrcode == ERRCODE_READ_ONLY_SQL_TRANSACTION;
}

/* One write attempt: deliveries [lo, hi), or delivery lo as rejected. */
typedef struct WriteAttempt
{
	int			lo;
	int			hi;
	const char *reason;			/* NULL: parse and write; else reject lo */
	BatchArrays b;
} WriteAttempt;

/*
 * Step: one transaction writing an attempt's deliveries, parsed inside it
 * (so even an out-of-memory while parsing is caught), or its single
 * delivery stored as rejected with the reason.
 */
static int
write_step(BuildlogWorker *bw, void *arg)
{
	DrainWorker *w = (DrainWorker *) bw;
	WriteAttempt *a = (WriteAttempt *) arg;
	MemoryContext old;

	buildlog_worker_begin("buildlog drain: writing a batch");
	if (!OidIsValid(get_extension_oid("buildlog", true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension buildlog is not installed in database \"%s\"",
						buildlog_database)));
	old = MemoryContextSwitchTo(w->attempt_cxt);
	if (a->reason != NULL)
	{
		alloc_arrays(&a->b, 1);
		add_rejected(&a->b, &w->deliveries[a->lo], a->reason);
	}
	else
		parse_batch(&w->deliveries[a->lo], a->hi - a->lo, &a->b);
	MemoryContextSwitchTo(old);
	write_batch(&a->b);
	buildlog_worker_commit();
	return 0;
}

/*
 * Write deliveries [lo, hi) (or, with reason, store delivery lo as
 * rejected) in one step, and ack them after the commit.  On an ERROR,
 * error gets "SQLSTATE: message".
 */
static WriteResult
write_range(DrainWorker *w, int lo, int hi, const char *reason,
			char *error, size_t errlen)
{
	WriteAttempt a = {lo, hi, reason};

	MemoryContextReset(w->attempt_cxt);
	if (buildlog_worker_run_step(&w->w, "writing", write_step, &a) == WORKER_STEP_ERROR)
	{
		pg_atomic_fetch_add_u64(&w->stats->failed_batches, 1);
		snprintf(error, errlen, "%s: %s", unpack_sql_state(w->w.sqlerrcode),
				 w->w.error_message);
		return systemic_error(w->w.sqlerrcode) ? WRITE_SYSTEM_ERROR : WRITE_DATA_ERROR;
	}
	count_batch(w, hi - lo, &a.b);
	if (reason != NULL)
		pg_atomic_fetch_add_u64(&w->stats->error_rejected, 1);
	if (w->link.connected &&
		!buildlog_amqp_settle(&w->link, w->deliveries[hi - 1].tag, true))
		connection_lost(w);
	return WRITE_OK;
}

/* Log a failed write attempt (rate-limited per kind of error). */
static void
log_failure(DrainWorker *w, const char *what, const char *error)
{
	char		text[BUILDLOG_WORKER_LOG_LEN];

	snprintf(text, sizeof(text), "%s: %s", what, error);
	buildlog_worker_problem(&w->w, WARNING, text);
}

/*
 * Write deliveries [lo, hi), splitting a failed range in halves down to
 * single deliveries; a single delivery that still fails is stored as
 * rejected with its error.  Returns how many deliveries from lo were
 * settled; fewer than hi - lo after a systemic error (the rest stay
 * unacked for a retry) or a lost connection.
 */
static int
write_pieces(DrainWorker *w, int lo, int hi)
{
	char		error[BUILDLOG_WORKER_LOG_LEN];
	char		what[128];
	char		reason[BUILDLOG_WORKER_LOG_LEN + 64];
	WriteResult r;
	int			mid;
	int			done;

	if (!w->link.connected)
		return 0;
	r = write_range(w, lo, hi, NULL, error, sizeof(error));
	if (r == WRITE_OK)
		return hi - lo;
	if (r == WRITE_SYSTEM_ERROR)
	{
		snprintf(what, sizeof(what), "%d deliveries not written, kept for a retry", hi - lo);
		log_failure(w, what, error);
		return 0;
	}
	if (hi - lo > 1)
	{
		snprintf(what, sizeof(what), "%d deliveries not written, retrying them in smaller pieces",
				 hi - lo);
		log_failure(w, what, error);
		pg_atomic_fetch_add_u64(&w->stats->split_retries, 1);
		/* serve the connection between pieces: there may be many */
		if (!buildlog_amqp_keepalive(&w->link))
		{
			connection_lost(w);
			return 0;
		}
		mid = lo + (hi - lo) / 2;
		done = write_pieces(w, lo, mid);
		if (done < mid - lo)
			return done;
		return done + write_pieces(w, mid, hi);
	}

	/* one delivery the data path cannot write: keep it aside, with why */
	snprintf(reason, sizeof(reason), "could not be written: %s", error);
	r = write_range(w, lo, hi, reason, error, sizeof(error));
	if (r == WRITE_OK)
	{
		snprintf(what, sizeof(what),
				 "a delivery of queue \"%.64s\" (delivery tag " UINT64_FORMAT ") was stored in rejected_parts",
				 w->deliveries[lo].queue, w->deliveries[lo].tag);
		log_failure(w, what, reason);
		return 1;
	}
	/* even that failed: a systemic problem, never turn data into rejects */
	log_failure(w, "could not store a failed delivery in rejected_parts either, kept for a retry",
				error);
	return 0;
}

/*
 * Write a gathered (or held) batch of n deliveries from [0].  After a
 * systemic failure the unwritten rest is moved to [0] and held for a retry
 * after the back-off; false then.
 */
static bool
process_batch(DrainWorker *w, int n)
{
	int			done = write_pieces(w, 0, n);

	w->held = 0;
	if (done == n)
	{
		buildlog_backoff_reset(&w->w.backoff);
		return true;
	}
	if (!w->link.connected)
		return false;			/* the broker redelivers the rest */
	memmove(w->deliveries, w->deliveries + done, sizeof(AmqpDelivery) * (n - done));
	w->held = n - done;
	w->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  buildlog_backoff_next(&w->w.backoff));
	return false;
}

/*
 * Wait for the retry of held deliveries without going deaf: at most a
 * second at a time, sending heartbeats.  False when the connection broke.
 */
static bool
back_off(DrainWorker *w)
{
	long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), w->retry_at);

	if (!buildlog_amqp_keepalive(&w->link))
	{
		connection_lost(w);
		return false;
	}
	if (left > 0)
		wait_for(w, Min(left, IDLE_WAIT_MS), false);
	return true;
}

/*
 * Step: retry the held deliveries once their back-off is over (serving
 * heartbeats meanwhile).  False while waiting, failing or disconnected.
 */
static bool
retry_held(DrainWorker *w)
{
	bool		ok;

	MemoryContextSwitchTo(w->w.step_cxt);
	if (GetCurrentTimestamp() < w->retry_at)
	{
		back_off(w);
		ok = false;
	}
	else
		ok = process_batch(w, w->held);
	MemoryContextSwitchTo(w->w.loop_cxt);
	return ok && w->link.connected;
}

/*
 * Step: gather one batch in a fresh batch context and write it.  False
 * when idle, failing or disconnected.
 */
static bool
drain_batch(DrainWorker *w)
{
	int			n;
	bool		ok;

	MemoryContextReset(w->w.step_cxt);
	MemoryContextSwitchTo(w->w.step_cxt);
	n = gather(w);
	ok = n > 0 && process_batch(w, n);
	MemoryContextSwitchTo(w->w.loop_cxt);
	return ok && w->link.connected;
}

/* Step: is the extension there (at our schema)?  Disconnects while not. */
static bool
check_extension(DrainWorker *w)
{
	w->checked = buildlog_worker_ready(&w->w);
	if (!w->checked)
		disconnect(w);
	return w->checked;
}

/* How long to wait for the next connection attempt (at most a second). */
static long
connect_wait_ms(DrainWorker *w)
{
	long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), w->next_connect);

	return Max(Min(left, IDLE_WAIT_MS), 10);
}

void
buildlog_drain_main(Datum arg)
{
	DrainWorker w;

	memset(&w, 0, sizeof(w));
	memcpy(&w.index, MyBgworkerEntry->bgw_extra, sizeof(int));
	memcpy(&w.nworkers, MyBgworkerEntry->bgw_extra + sizeof(int), sizeof(int));
	if (w.nworkers <= 0)
		w.nworkers = buildlog_drain_workers;
	w.stats = &buildlog_shared->drain[w.index];
	pg_atomic_write_u32(&w.stats->connected, 0);
	pg_atomic_write_u64(&w.stats->connected_since, 0);
	w.connect.min_ms = BACKOFF_MIN_MS;
	w.connect.max_ms = CONNECT_BACKOFF_MAX_MS;
	buildlog_worker_start(&w.w, &w.stats->slot, BACKOFF_MIN_MS, BACKOFF_MAX_MS, 0);
	w.attempt_cxt = AllocSetContextCreate(w.w.loop_cxt, "buildlog drain attempt",
										  ALLOCSET_DEFAULT_SIZES);
	w.capacity = 10000;			/* the largest buildlog.batch_size */
	w.deliveries = palloc(sizeof(AmqpDelivery) * w.capacity);
	assign_queues(&w);

	/* the steps; the extension check is a catalog lookup: only when idle or failing */
	for (;;)
	{
		buildlog_worker_check_interrupts();
		if (handle_config(&w))
			w.checked = false;
		if (!w.checked && !check_extension(&w))
			wait_for(&w, 5000, false);
		else if (!ensure_connected(&w))
			wait_for(&w, connect_wait_ms(&w), false);
		else if (w.held > 0)
			w.checked = retry_held(&w);
		else
			w.checked = drain_batch(&w);
	}
}
