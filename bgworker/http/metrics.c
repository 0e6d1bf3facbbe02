/*-------------------------------------------------------------------------
 * metrics.c
 *	  GET /metrics: every worker's counters in Prometheus' text format.
 *
 * The drain, scheduler, archive and life-cycle figures come from one query
 * over the buildlog views (in a step of the HTTP worker); the HTTP
 * worker's own counters, its limits' and its readers' come from shared
 * memory without a query.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stddef.h>
#include <microhttpd.h>

#include "executor/spi.h"
#include "lib/stringinfo.h"

#include "http/limits.h"
#include "http/metrics.h"
#include "http/reader_pool.h"
#include "spiutil.h"

/* The metrics the SQL of GET /metrics produces: name, type, help. */
static const char *const metric_docs[][3] = {
	{"buildlog_drain_connected", "gauge", "1 while the drain worker is connected to the broker."},
	{"buildlog_drain_deliveries_total", "counter", "Deliveries received by a drain worker."},
	{"buildlog_drain_parts_total", "counter", "Parts a drain worker stored."},
	{"buildlog_drain_rejected_total", "counter", "Deliveries kept aside in rejected_parts."},
	{"buildlog_drain_replaced_total", "counter", "U+FFFD substitutions made in stored parts."},
	{"buildlog_drain_batches_total", "counter", "Batches committed."},
	{"buildlog_drain_failed_batches_total", "counter", "Write transactions that failed."},
	{"buildlog_drain_reconnects_total", "counter", "Connections made to the broker."},
	{"buildlog_scheduler_aggregated_total", "counter", "Jobs aggregated by the scheduler."},
	{"buildlog_scheduler_parts_merged_total", "counter", "Parts merged by the scheduler."},
	{"buildlog_scheduler_aggregate_failures_total", "counter", "Failed aggregations."},
	{"buildlog_scheduler_deferred_total", "counter", "Aggregations deferred (the log was being archived)."},
	{"buildlog_scheduler_maintenance_runs_total", "counter", "Partition maintenance runs."},
	{"buildlog_archive_archived_total", "counter", "Logs uploaded by an archive worker."},
	{"buildlog_archive_bytes_total", "counter", "Stored bytes uploaded."},
	{"buildlog_archive_verified_total", "counter", "Archives verified."},
	{"buildlog_archive_purged_total", "counter", "Logs purged from the database after verification."},
	{"buildlog_archive_reuploads_total", "counter", "Archives found missing or different and uploaded again."},
	{"buildlog_archive_retries_total", "counter", "S3 attempts retried (unreachable, 5xx)."},
	{"buildlog_archive_failures_total", "counter", "S3 attempts failed (4xx, errors)."},
	{"buildlog_archive_queued", "gauge", "Logs waiting for an upload."},
	{"buildlog_logs", "gauge", "Logs by life-cycle state (buildlog.lifecycle)."},
	{NULL, NULL, NULL}
};

static SPIPlanPtr metrics_plan = NULL;

/* Append one metric's HELP and TYPE lines. */
static void
metric_header(StringInfo buf, const char *name, const char *type, const char *help)
{
	appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The HTTP worker's counters: name, labels, type, help, field of HttpStats. */
static const struct
{
	const char *name;
	const char *labels;
	const char *type;
	const char *help;
	size_t		offset;
}			http_stats[] =
{
	{"buildlog_http_requests_total", NULL, "counter", "HTTP requests received.", offsetof(HttpStats, requests)},
	{"buildlog_http_responses_total", "class=\"2xx\"", "counter", "HTTP responses by status class.", offsetof(HttpStats, responses_2xx)},
	{"buildlog_http_responses_total", "class=\"4xx\"", NULL, NULL, offsetof(HttpStats, responses_4xx)},
	{"buildlog_http_responses_total", "class=\"5xx\"", NULL, NULL, offsetof(HttpStats, responses_5xx)},
	{"buildlog_http_sent_bytes_total", NULL, "counter", "Body bytes sent.", offsetof(HttpStats, bytes_sent)},
	{"buildlog_http_connections", NULL, "gauge", "HTTP connections open now.", offsetof(HttpStats, connections)},
	{"buildlog_http_streams", NULL, "gauge", "Event streams open now.", offsetof(HttpStats, streams)},
	{"buildlog_http_events_total", NULL, "counter", "Part events sent to event streams.", offsetof(HttpStats, events)},
	{"buildlog_http_ingest_commits_total", NULL, "counter", "Transactions of the HTTP uploads' group commit.", offsetof(HttpStats, ingest_commits)},
	{"buildlog_http_ingest_writes_total", NULL, "counter", "Uploads (a batch, a part, a stream's flush) stored by those transactions.", offsetof(HttpStats, ingest_writes)},
	{"buildlog_http_ingest_parts_total", NULL, "counter", "Parts stored by HTTP uploads.", offsetof(HttpStats, ingest_parts)},
	{"buildlog_http_stream_bytes_total", NULL, "counter", "Raw body bytes of POST /jobs/{id}/stream stored.", offsetof(HttpStats, stream_bytes)},
	{"buildlog_http_uploads", NULL, "gauge", "POST /jobs/{id}/stream requests open now.", offsetof(HttpStats, uploads)},
	{NULL, NULL, NULL, NULL, 0}
};

/* Append the HTTP worker's own counters (shared memory, no query), then its limits'. */
static void
http_metrics(StringInfo buf, HttpStats *st)
{
	for (int i = 0; http_stats[i].name != NULL; i++)
	{
		uint64		value = pg_atomic_read_u64((pg_atomic_uint64 *) ((char *) st + http_stats[i].offset));

		/* a metric's first line has its HELP and TYPE; the next ones are its other labels */
		if (http_stats[i].type != NULL)
			metric_header(buf, http_stats[i].name, http_stats[i].type, http_stats[i].help);
		if (http_stats[i].labels != NULL)
			appendStringInfo(buf, "%s{%s} " UINT64_FORMAT "\n", http_stats[i].name,
							 http_stats[i].labels, value);
		else
			appendStringInfo(buf, "%s " UINT64_FORMAT "\n", http_stats[i].name, value);
	}
	buildlog_http_limits_metrics(buf);
}

int
buildlog_http_metrics_step(BuildlogWorker *w, void *arg)
{
	HttpResponse *r = (HttpResponse *) arg;
	HttpWorker *h = (HttpWorker *) w;
	StringInfoData buf;
	const char *last = "";
	MemoryContext old;

	if (!buildlog_http_begin_read("buildlog http: GET /metrics", r))
		return 0;
	buildlog_run(buildlog_plan(&metrics_plan,
							   "select 'buildlog_' || v.name, v.labels, v.value::text from ("
							   " select v.* from buildlog.drain_stats d, lateral (values"
							   "  ('drain_connected', 'worker=\"' || d.worker || '\"', d.connected::int::bigint),"
							   "  ('drain_deliveries_total', 'worker=\"' || d.worker || '\"', d.deliveries),"
							   "  ('drain_parts_total', 'worker=\"' || d.worker || '\"', d.parts),"
							   "  ('drain_rejected_total', 'worker=\"' || d.worker || '\"', d.rejected),"
							   "  ('drain_replaced_total', 'worker=\"' || d.worker || '\"', d.replaced),"
							   "  ('drain_batches_total', 'worker=\"' || d.worker || '\"', d.batches),"
							   "  ('drain_failed_batches_total', 'worker=\"' || d.worker || '\"', d.failed_batches),"
							   "  ('drain_reconnects_total', 'worker=\"' || d.worker || '\"', d.reconnects)) v(name, labels, value)"
							   " union all"
							   " select v.* from buildlog.scheduler_stats s, lateral (values"
							   "  ('scheduler_aggregated_total', '', s.aggregated),"
							   "  ('scheduler_parts_merged_total', '', s.parts_merged),"
							   "  ('scheduler_aggregate_failures_total', '', s.aggregate_failures),"
							   "  ('scheduler_deferred_total', '', s.deferred),"
							   "  ('scheduler_maintenance_runs_total', '', s.maintenance_runs)) v(name, labels, value)"
							   " union all"
							   " select v.* from buildlog.archive_stats a, lateral (values"
							   "  ('archive_archived_total', 'worker=\"' || a.worker || '\"', a.archived),"
							   "  ('archive_bytes_total', 'worker=\"' || a.worker || '\"', a.bytes),"
							   "  ('archive_verified_total', 'worker=\"' || a.worker || '\"', a.verified),"
							   "  ('archive_purged_total', 'worker=\"' || a.worker || '\"', a.purged),"
							   "  ('archive_reuploads_total', 'worker=\"' || a.worker || '\"', a.reuploads),"
							   "  ('archive_retries_total', 'worker=\"' || a.worker || '\"', a.retries),"
							   "  ('archive_failures_total', 'worker=\"' || a.worker || '\"', a.failures),"
							   "  ('archive_queued', 'worker=\"' || a.worker || '\"', a.queued)) v(name, labels, value)"
							   " union all"
							   " select v.* from buildlog.lifecycle l, lateral (values"
							   "  ('logs', 'state=\"streaming\"', l.streaming), ('logs', 'state=\"due\"', l.due),"
							   "  ('logs', 'state=\"aggregated\"', l.aggregated), ('logs', 'state=\"archived\"', l.archived),"
							   "  ('logs', 'state=\"verified\"', l.verified), ('logs', 'state=\"purged\"', l.purged),"
							   "  ('logs', 'state=\"removed\"', l.removed), ('logs', 'state=\"deleting\"', l.deleting),"
							   "  ('logs', 'state=\"expired_parts\"', l.expired_parts)) v(name, labels, value)"
							   ") v order by 1, 2", 0, NULL),
				 NULL, NULL, true, SPI_OK_SELECT);
	old = MemoryContextSwitchTo(r->cxt);
	initStringInfo(&buf);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *labels = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		char	   *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);

		if (strcmp(name, last) != 0)
		{
			for (int m = 0; metric_docs[m][0] != NULL; m++)
				if (strcmp(metric_docs[m][0], name) == 0)
					metric_header(&buf, name, metric_docs[m][1], metric_docs[m][2]);
			last = name;
		}
		if (labels == NULL || labels[0] == '\0')
			appendStringInfo(&buf, "%s %s\n", name, value ? value : "0");
		else
			appendStringInfo(&buf, "%s{%s} %s\n", name, labels, value ? value : "0");
	}
	http_metrics(&buf, h->stats);
	buildlog_http_reads_metrics(&buf);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	buildlog_http_set_body(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf.data, buf.len);
	return 0;
}

