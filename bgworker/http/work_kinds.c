/*-------------------------------------------------------------------------
 * work_kinds.c
 *	  What the helper processes of the HTTP wing run, kind by kind: the one
 *	  place that knows every user of the pool (reader_pool.c runs work and
 *	  hands answers back only through this table).
 *
 * A kind says, in a helper, how to answer the work (a read of the read
 * path, or a group commit of uploads), and, in the HTTP worker, who takes
 * the answer: an event stream, the group commit, or (done NULL) the
 * suspended connection of a GET, resumed to send the answer's file.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>

#include "http/events.h"
#include "http/reads.h"
#include "http/travis_api.h"
#include "http/uploads.h"
#include "http/work_kinds.h"

/* In a helper: a read of the read path, as a step (its ERROR a 500 or 503). */
static void
run_read(BuildlogWorker *w, const HttpReadArgs *args, int requester, HttpResponse *r)
{
	HttpReadCall call = {args, r};
	char		what[96];

	snprintf(what, sizeof(what), "GET /jobs/" INT64_FORMAT "/%s", args->job_id,
			 buildlog_http_work_kind(args->kind)->name);
	if (buildlog_worker_run_step(w, what, buildlog_http_read_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(w, WARNING, w->error);
		buildlog_http_read_failed(w, r);
	}
}

/* In a helper: a read of travis-logs' web API (travis_api.c), as a step. */
static void
run_travis(BuildlogWorker *w, const HttpReadArgs *args, int requester, HttpResponse *r)
{
	HttpReadCall call = {args, r};
	char		what[96];

	snprintf(what, sizeof(what), "GET travis %s of job " INT64_FORMAT,
			 buildlog_http_work_kind(args->kind)->name, args->job_id);
	if (buildlog_worker_run_step(w, what, buildlog_travis_read_step, &call) == WORKER_STEP_ERROR)
	{
		buildlog_worker_problem(w, WARNING, w->error);
		buildlog_http_read_failed(w, r);
	}
}

/* In a helper: a group commit of uploads (its own steps). */
static void
run_group(BuildlogWorker *w, const HttpReadArgs *args, int requester, HttpResponse *r)
{
	buildlog_http_group_write(w, args, requester, r);
}

/* In the HTTP worker: an event stream's answer. */
static void
done_events(HttpWorker *h, void *owner, int i)
{
	buildlog_http_events_read_done(h, owner, i);
}

/* In the HTTP worker: the group commit's answer. */
static void
done_group(HttpWorker *h, void *owner, int i)
{
	buildlog_http_group_done(h, i);
}

static const HttpWorkKind kinds[] = {
	[HTTP_READ_LOG] = {"log", run_read, NULL},
	[HTTP_READ_PARTS] = {"parts", run_read, NULL},
	[HTTP_READ_EVENTS] = {"events", run_read, done_events},
	[HTTP_READ_BUNDLE] = {"bundle", run_read, NULL},
	[HTTP_WRITE_GROUP] = {"group commit", run_group, done_group},
	[HTTP_READ_TRAVIS_LOG] = {"logs", run_travis, NULL},
	[HTTP_READ_TRAVIS_PARTS] = {"log-parts", run_travis, NULL},
};

const HttpWorkKind *
buildlog_http_work_kind(HttpReadKind kind)
{
	static const HttpWorkKind unknown = {"?", run_read, NULL};

	if ((int) kind < 0 || (int) kind >= (int) lengthof(kinds) || kinds[kind].name == NULL)
		return &unknown;
	return &kinds[kind];
}
