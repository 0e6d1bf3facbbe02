/*-------------------------------------------------------------------------
 * drain.c
 *	  The drain worker: batches deliveries, writes them in one transaction
 *	  through the ingest path, then acks them.
 *
 * Loop: gather up to buildlog.batch_size deliveries or buildlog.flush_ms
 * after the first, whichever comes first; parse them; write good parts
 * (buildlog_ingest) and rejected deliveries (rejected_parts) in one
 * transaction; commit; then one basic.ack with multiple=true.  An ERROR
 * aborts the transaction and nacks the batch back to the broker (requeue),
 * is logged once, and the worker backs off and carries on.  A broken
 * connection is re-established with capped exponential back-off.
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

#include "../extension/guc.h"
#include "../extension/ingest.h"
#include "../extension/rejected.h"
#include "amqp_link.h"
#include "drain.h"
#include "message.h"
#include "shmem.h"
#include "worker.h"

#define BACKOFF_MIN_MS		500
#define BACKOFF_MAX_MS		30000	/* after failed batches */
#define CONNECT_BACKOFF_MAX_MS	5000	/* between connection attempts */
#define IDLE_WAIT_MS		1000

/* Everything one worker keeps between batches. */
typedef struct DrainWorker
{
	int			index;			/* 0-based worker number */
	DrainStats *stats;
	AmqpLink	link;
	char	  **queues;
	int			nqueues;
	uint64		generation;
	MemoryContext loop_cxt;		/* lives as long as the worker */
	MemoryContext batch_cxt;	/* reset for every batch */
	AmqpDelivery *deliveries;
	int			capacity;
	int			backoff_ms;		/* connection back-off */
	int			failure_backoff_ms; /* back-off after a failed batch */
	TimestampTz next_connect;
	WorkerLogLimit log;
	bool		waiting_for_extension;
} DrainWorker;

/* Register buildlog.drain_workers workers; called from _PG_init. */
void
buildlog_drain_register(void)
{
	for (int i = 0; i < buildlog_drain_workers; i++)
		buildlog_worker_register("drain", "buildlog_drain_main", i, true);
}

/* Log a problem once: repeats of the same text stay quiet. */
static void
log_once(DrainWorker *w, int level, const char *text)
{
	buildlog_stats_error(w->stats, text);
	buildlog_worker_log(&w->log, level, MyBgworkerEntry->bgw_name, text, 0);
}

/* The queues this worker consumes: its share of buildlog.amqp_queues. */
static void
assign_queues(DrainWorker *w)
{
	char	   *list;
	List	   *names = NIL;
	int			total;
	int			i;
	char		shown[BUILDLOG_TEXT_LEN] = "";
	MemoryContext old = MemoryContextSwitchTo(w->loop_cxt);

	list = pstrdup(buildlog_amqp_queues ? buildlog_amqp_queues : "");
	if (!SplitIdentifierString(list, ',', &names) || list_length(names) == 0)
	{
		log_once(w, WARNING, "buildlog.amqp_queues is empty or not a valid list");
		names = NIL;
	}
	total = list_length(names);
	w->queues = palloc0(sizeof(char *) * Max(total, 1));
	w->nqueues = 0;
	for (i = 0; i < total; i++)
	{
		/* split a longer list; share a shorter one */
		bool		mine = (total >= buildlog_drain_workers)
			? (i % buildlog_drain_workers == w->index)
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
	buildlog_stats_set_text(w->stats, w->stats->queues, shown);
	MemoryContextSwitchTo(old);
}

/* Drop the broker connection (unacked deliveries are redelivered). */
static void
disconnect(DrainWorker *w)
{
	if (w->link.conn != NULL)
		buildlog_amqp_disconnect(&w->link);
	pg_atomic_write_u32(&w->stats->connected, 0);
}

/*
 * Apply SIGHUP (batch settings take effect with the next batch) and
 * restart_workers(): re-read the settings, then reconnect.
 */
static void
handle_config(DrainWorker *w)
{
	uint64		generation = pg_atomic_read_u64(&buildlog_shared->generation);

	if (generation != w->generation)
		ConfigReloadPending = true; /* read the file now, whatever the SIGHUP does */
	buildlog_worker_reload(MyBgworkerEntry->bgw_name);
	if (generation == w->generation)
		return;
	w->generation = generation;
	disconnect(w);
	assign_queues(w);
	w->backoff_ms = BACKOFF_MIN_MS;
	w->next_connect = 0;
	buildlog_worker_log_reset(&w->log);
	ereport(LOG, (errmsg("%s: settings reloaded, reconnecting", MyBgworkerEntry->bgw_name)));
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
	CHECK_FOR_INTERRUPTS();
	return rc;
}

/* Is the extension installed in our database?  Says so once if not. */
static bool
extension_ready(DrainWorker *w)
{
	return buildlog_worker_extension_ready(MyBgworkerEntry->bgw_name,
										   &w->waiting_for_extension);
}

/* Connect when due; false while disconnected. */
static bool
ensure_connected(DrainWorker *w)
{
	TimestampTz now;

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
	if (!buildlog_amqp_connect(&w->link, buildlog_amqp_url, w->queues, w->nqueues,
							   2 * buildlog_batch_size, buildlog_amqp_heartbeat_s))
	{
		char		text[AMQP_ERROR_LEN + 64];

		snprintf(text, sizeof(text), "%s; retrying with back-off", w->link.error);
		log_once(w, LOG, text);
		w->next_connect = TimestampTzPlusMilliseconds(now, w->backoff_ms);
		w->backoff_ms = Min(w->backoff_ms * 2, CONNECT_BACKOFF_MAX_MS);
		return false;
	}
	ereport(LOG, (errmsg("buildlog drain %d: consuming %s from %s",
						 w->index + 1, w->stats->queues, w->link.where)));
	buildlog_worker_log_reset(&w->log);
	w->backoff_ms = BACKOFF_MIN_MS;
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
	log_once(w, LOG, text);
	disconnect(w);
	w->next_connect = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), w->backoff_ms);
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
			if (n++ == 0)
				deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   buildlog_flush_ms);
			else if (GetCurrentTimestamp() >= deadline)
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

/* Parallel arrays for write_parts and rejected_parts. */
typedef struct BatchArrays
{
	int			ngood;
	Datum	   *jobs;
	Datum	   *numbers;
	Datum	   *contents;
	Datum	   *finals;
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

/* Parse every delivery into good parts or rejected rows. */
static void
parse_batch(AmqpDelivery *d, int n, BatchArrays *b)
{
	int			i;

	memset(b, 0, sizeof(*b));
	b->jobs = palloc(sizeof(Datum) * n);
	b->numbers = palloc(sizeof(Datum) * n);
	b->contents = palloc(sizeof(Datum) * n);
	b->finals = palloc(sizeof(Datum) * n);
	b->r_queue = palloc(sizeof(Datum) * n);
	b->r_exchange = palloc(sizeof(Datum) * n);
	b->r_key = palloc(sizeof(Datum) * n);
	b->r_tag = palloc(sizeof(Datum) * n);
	b->r_redelivered = palloc(sizeof(Datum) * n);
	b->r_reason = palloc(sizeof(Datum) * n);
	b->r_body = palloc(sizeof(Datum) * n);

	for (i = 0; i < n; i++)
	{
		ParsedPart p;

		buildlog_parse_part(d[i].body, d[i].len, buildlog_max_part_bytes, false, &p);
		b->replaced += p.replaced;
		if (p.ok)
		{
			b->jobs[b->ngood] = Int64GetDatum(p.job_id);
			b->numbers[b->ngood] = Int32GetDatum(p.number);
			b->contents[b->ngood] = PointerGetDatum(p.content);
			b->finals[b->ngood] = BoolGetDatum(p.final);
			b->ngood++;
		}
		else
		{
			bytea	   *body = palloc(VARHDRSZ + d[i].len);

			SET_VARSIZE(body, VARHDRSZ + d[i].len);
			memcpy(VARDATA(body), d[i].body, d[i].len);
			b->r_queue[b->nbad] = CStringGetTextDatum(d[i].queue);
			b->r_exchange[b->nbad] = CStringGetTextDatum(d[i].exchange);
			b->r_key[b->nbad] = CStringGetTextDatum(d[i].routing_key);
			b->r_tag[b->nbad] = Int64GetDatum((int64) d[i].tag);
			b->r_redelivered[b->nbad] = BoolGetDatum(d[i].redelivered);
			b->r_reason[b->nbad] = CStringGetTextDatum(p.reason);
			b->r_body[b->nbad] = PointerGetDatum(body);
			b->nbad++;
		}
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
	if (b->ngood > 0)
		buildlog_ingest(construct_array(b->jobs, b->ngood, INT8OID, 8,
										FLOAT8PASSBYVAL, TYPALIGN_DOUBLE),
						construct_array(b->numbers, b->ngood, INT4OID, 4,
										true, TYPALIGN_INT),
						construct_array(b->contents, b->ngood, TEXTOID, -1,
										false, TYPALIGN_INT),
						construct_array(b->finals, b->ngood, BOOLOID, 1,
										true, TYPALIGN_CHAR));
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
	pg_atomic_fetch_add_u64(&s->parts, b->ngood);
	pg_atomic_fetch_add_u64(&s->rejected, b->nbad);
	pg_atomic_fetch_add_u64(&s->replaced, b->replaced);
	pg_atomic_fetch_add_u64(&s->batches, 1);
	if ((uint64) n > pg_atomic_read_u64(&s->max_batch))
		pg_atomic_write_u64(&s->max_batch, n);
	pg_atomic_write_u64(&s->last_commit, (uint64) GetCurrentTimestamp());
}

/*
 * Write a gathered batch and settle it with the broker: ack after the
 * commit, nack (requeue) after an ERROR.  False when the batch failed.
 */
static bool
process_batch(DrainWorker *w, int n)
{
	BatchArrays b;
	uint64		last_tag = w->deliveries[n - 1].tag;
	volatile bool ok = false;

	parse_batch(w->deliveries, n, &b);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "buildlog drain: writing a batch");
		if (!OidIsValid(get_extension_oid("buildlog", true)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension buildlog is not installed in database \"%s\"",
							buildlog_database)));
		write_batch(&b);
		PopActiveSnapshot();
		CommitTransactionCommand();
		ok = true;
	}
	PG_CATCH();
	{
		char		what[64];
		char		text[AMQP_ERROR_LEN];

		snprintf(what, sizeof(what),
				 "batch of %d deliveries not written, returned to the broker", n);
		buildlog_worker_abort(w->loop_cxt, what, text, sizeof(text));
		log_once(w, WARNING, text);
		pg_atomic_fetch_add_u64(&w->stats->failed_batches, 1);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(w->loop_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (!buildlog_amqp_settle(&w->link, last_tag, ok))
		connection_lost(w);
	if (ok)
	{
		count_batch(w, n, &b);
		w->failure_backoff_ms = 0;
	}
	return ok;
}

/* Mark our stats slot free when the worker exits. */
static void
release_slot(int code, Datum arg)
{
	DrainStats *s = &buildlog_shared->drain[DatumGetInt32(arg)];

	pg_atomic_write_u32(&s->connected, 0);
	pg_atomic_write_u32(&s->in_use, 0);
}

/* Claim and reset our stats slot. */
static DrainStats *
claim_slot(int index)
{
	DrainStats *s = &buildlog_shared->drain[index];

	pg_atomic_write_u64(&s->pid, (uint64) MyProcPid);
	pg_atomic_write_u32(&s->connected, 0);
	pg_atomic_write_u64(&s->connected_since, 0);
	s->pgprocno = MyProc->pgprocno;
	pg_atomic_write_u32(&s->in_use, 1);
	on_shmem_exit(release_slot, Int32GetDatum(index));
	return s;
}

void
buildlog_drain_main(Datum arg)
{
	DrainWorker w;

	memset(&w, 0, sizeof(w));
	memcpy(&w.index, MyBgworkerEntry->bgw_extra, sizeof(int));
	buildlog_worker_signals();

	w.stats = claim_slot(w.index);
	w.generation = pg_atomic_read_u64(&buildlog_shared->generation);
	w.loop_cxt = AllocSetContextCreate(TopMemoryContext, "buildlog drain",
									   ALLOCSET_DEFAULT_SIZES);
	w.batch_cxt = AllocSetContextCreate(w.loop_cxt, "buildlog drain batch",
										ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(w.loop_cxt);
	w.capacity = 10000;			/* the largest buildlog.batch_size */
	w.deliveries = palloc(sizeof(AmqpDelivery) * w.capacity);
	w.backoff_ms = BACKOFF_MIN_MS;
	assign_queues(&w);

	buildlog_worker_connect();

	for (;;)
	{
		int			n;

		CHECK_FOR_INTERRUPTS();
		handle_config(&w);
		if (!extension_ready(&w))
		{
			disconnect(&w);
			wait_for(&w, 5000, false);
			continue;
		}
		if (!ensure_connected(&w))
		{
			wait_for(&w, Min(IDLE_WAIT_MS, w.backoff_ms), false);
			continue;
		}
		/* extension_ready() is a catalog lookup: only when idle or failing */
		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending ||
				pg_atomic_read_u64(&buildlog_shared->generation) != w.generation)
				break;
			MemoryContextReset(w.batch_cxt);
			MemoryContextSwitchTo(w.batch_cxt);
			n = gather(&w);
			if (n > 0 && !process_batch(&w, n))
			{
				/* capped back-off after a failed batch, then re-check */
				w.failure_backoff_ms = Max(BACKOFF_MIN_MS,
										   Min(w.failure_backoff_ms * 2, BACKOFF_MAX_MS));
				MemoryContextSwitchTo(w.loop_cxt);
				wait_for(&w, w.failure_backoff_ms, false);
				break;
			}
			MemoryContextSwitchTo(w.loop_cxt);
			/* idle, or the ack failed and the connection is gone */
			if (n == 0 || !w.link.connected)
				break;
		}
	}
}
