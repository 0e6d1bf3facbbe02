/*-------------------------------------------------------------------------
 * auth.c
 *	  Job tokens at the HTTP service: the key, a request's token checked
 *	  (form, MAC, expiry, job, scope) and token revocations.
 *
 * Every token-scoped request (uploads, streams, and reads when
 * buildlog.http_read_tokens is on) goes through buildlog_http_authorize();
 * tokens are checked offline against the key (token.c) and against the
 * revocations the worker keeps in memory, read again when a revoking
 * commit moved the shared counter.  Tokens and the key are never logged.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>
#include <time.h>

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http/auth.h"
#include "token.h"

void
buildlog_http_load_key(HttpWorker *h)
{
	MemoryContext old = MemoryContextSwitchTo(h->w.loop_cxt);

	if (h->token_key != NULL)
	{
		explicit_bzero(h->token_key, strlen(h->token_key));
		pfree(h->token_key);
		h->token_key = NULL;
	}
	if (buildlog_http_token_key_file == NULL || buildlog_http_token_key_file[0] == '\0')
	{
		MemoryContextSwitchTo(old);
		return;
	}
	PG_TRY();
	{
		h->token_key = buildlog_token_key();
	}
	PG_CATCH();
	{
		char		msg[BUILDLOG_TEXT_LEN];

		buildlog_worker_abort(h->w.loop_cxt, "reading the token key failed", msg, sizeof(msg));
		buildlog_worker_problem(&h->w, WARNING, msg);
		h->token_key = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/* 401 with the Bearer challenge. */
static void
unauthorized(HttpResponse *r, const char *detail)
{
	buildlog_http_add_header(r, "WWW-Authenticate", "Bearer realm=\"buildlog\"");
	buildlog_http_problem(r, MHD_HTTP_UNAUTHORIZED, "Unauthorized", detail);
}

/*
 * Token revocations (buildlog.revoke_tokens()): the jobs whose tokens are
 * revoked, read from buildlog.token_revocations at the first check after the
 * worker starts, again whenever a commit changed the table (the shared
 * counter moved), and at least once a minute (changes whose commit no
 * counter saw: a prepared transaction, a restore with its triggers
 * disabled, the extension dropped and created again).  A check costs an
 * atomic read and a hash lookup.
 */
#define REVOCATIONS_MAX_AGE_MS	60000

typedef struct RevokedJob
{
	int64		job_id;			/* key */
	int64		revoked_us;		/* tokens issued up to then are refused */
} RevokedJob;

static HTAB *revoked_jobs = NULL;	/* in the loop context */
static uint64 revoked_generation;	/* the counter when it was read */
static TimestampTz revoked_read_at;

/* Step: read the revocations into a new set (*arg, set first: freed on error). */
static int
read_revocations_step(BuildlogWorker *w, void *arg)
{
	HTAB	  **set = (HTAB **) arg;
	HASHCTL		ctl;
	TokenRevocation *rows;
	int			n;

	buildlog_worker_begin_spi("reading token revocations");
	rows = buildlog_token_revocations_read(&n);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(RevokedJob);
	ctl.hcxt = w->loop_cxt;
	*set = hash_create("buildlog revoked jobs", Max(n, 16), &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		RevokedJob *job = hash_search(*set, &rows[i].job_id, HASH_ENTER, NULL);

		job->revoked_us = rows[i].revoked_us;
	}
	buildlog_worker_commit_spi();
	return n;
}

/*
 * Is the worker's set of revocations current (read again when it was not)?
 * False with a 503 in r when it could not be read: no token is accepted
 * that a committed revocation refuses.
 */
static bool
revocations_current(HttpWorker *h, HttpResponse *r)
{
	uint64		generation = buildlog_token_revocations_generation();
	TimestampTz now = GetCurrentTimestamp();
	HTAB	   *set = NULL;

	if (revoked_jobs != NULL && generation == revoked_generation &&
		!TimestampDifferenceExceeds(revoked_read_at, now, REVOCATIONS_MAX_AGE_MS))
		return true;
	if (IsTransactionState())
	{
		/* inside a transaction of its own (never expected): no step here */
		if (revoked_jobs != NULL && generation == revoked_generation)
			return true;
		buildlog_http_add_header(r, "Retry-After", "1");
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  "The token revocations cannot be read now; try again.");
		return false;
	}
	if (buildlog_worker_run_step(&h->w, "reading token revocations",
								 read_revocations_step, &set) == WORKER_STEP_ERROR)
	{
		if (set != NULL)
			hash_destroy(set);
		buildlog_worker_problem(&h->w, WARNING, h->w.error);
		buildlog_http_add_header(r, "Retry-After", "1");
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  psprintf("The token revocations could not be read: %s",
									   h->w.error_message));
		return false;
	}
	if (revoked_jobs != NULL)
		hash_destroy(revoked_jobs);
	revoked_jobs = set;
	revoked_generation = generation;
	revoked_read_at = now;
	return true;
}

/* Is the token revoked?  True with the 401 in r. */
static bool
token_revoked(const TokenClaims *claims, HttpResponse *r)
{
	RevokedJob *job = hash_search(revoked_jobs, &claims->job_id, HASH_FIND, NULL);

	if (job == NULL || !buildlog_token_revoked(claims, job->revoked_us))
		return false;
	unauthorized(r, psprintf("The token was revoked: buildlog.revoke_tokens(" INT64_FORMAT ") at %s refused the job's tokens issued before it%s. Ask for a new token.",
							 claims->job_id,
							 timestamptz_to_str((TimestampTz) (job->revoked_us - TOKEN_UNIX_EPOCH_OFFSET_US)),
							 claims->issued == 0 ? " (a bl1 token, which carries no issue time)" : ""));
	return true;
}

bool
buildlog_http_authorize(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
						TokenScope need, HttpResponse *r, TokenClaims *claims_out)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_AUTHORIZATION);
	const char *query = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
	const char *token;

	if (h->token_key == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  "Uploads need buildlog.http_token_key_file, which is not set or not readable.");
		return false;
	}
	/* the scheme is case-insensitive (RFC 9110, 11.1) */
	if (auth != NULL && pg_strncasecmp(auth, "Bearer ", 7) == 0)
	{
		token = auth + 7;
		while (*token == ' ')
			token++;
	}
	else if (need == TOKEN_READ && query != NULL)
		token = query;			/* EventSource cannot send headers */
	else
	{
		unauthorized(r, "This request needs a job token: Authorization: Bearer <token> (buildlog.issue_token()).");
		return false;
	}
	return buildlog_http_authorize_token(h, token, job_id, need, r, claims_out);
}

bool
buildlog_http_authorize_token(HttpWorker *h, const char *token, int64 job_id,
							  TokenScope need, HttpResponse *r, TokenClaims *claims_out)
{
	TokenClaims claims;
	const char *why;

	if (h->token_key == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  "Uploads need buildlog.http_token_key_file, which is not set or not readable.");
		return false;
	}
	if (!buildlog_token_check(h->token_key, token, &claims, &why))
	{
		unauthorized(r, why);
		return false;
	}
	if (claims.expires <= (int64) time(NULL))
	{
		unauthorized(r, "The token has expired.");
		return false;
	}
	if (!revocations_current(h, r) || token_revoked(&claims, r))
		return false;
	if (claims.job_id != job_id)
	{
		buildlog_http_problem(r, MHD_HTTP_FORBIDDEN, "Forbidden", "The token is for another job.");
		return false;
	}
	/* admin may do anything, write also read its job; read only read */
	if (claims.scope != TOKEN_ADMIN && claims.scope != need &&
		!(need == TOKEN_READ && claims.scope == TOKEN_WRITE))
	{
		buildlog_http_problem(r, MHD_HTTP_FORBIDDEN, "Forbidden",
							  psprintf("The token's scope is %s; this request needs %s.",
									   buildlog_token_scope_name(claims.scope),
									   buildlog_token_scope_name(need)));
		return false;
	}
	*claims_out = claims;
	return true;
}

bool
buildlog_http_revocations_moved(void)
{
	return revoked_jobs != NULL &&
		buildlog_token_revocations_generation() != revoked_generation;
}

bool
buildlog_http_revocations_refresh(HttpWorker *h)
{
	HttpResponse r;

	memset(&r, 0, sizeof(r));
	r.cxt = h->w.step_cxt;
	return revocations_current(h, &r);
}

bool
buildlog_http_revoked(const TokenClaims *claims)
{
	RevokedJob *job = revoked_jobs ?
		hash_search(revoked_jobs, &claims->job_id, HASH_FIND, NULL) : NULL;

	return job != NULL && buildlog_token_revoked(claims, job->revoked_us);
}

