/*-------------------------------------------------------------------------
 * token.c
 *	  Job tokens: making, checking, issue_token() and the scope-fixed
 *	  issue_read_token() / issue_write_token(), and revocation:
 *	  revoke_tokens(), the trigger that counts the commits changing
 *	  buildlog.token_revocations, and the HTTP worker's read of that table
 *	  (see token.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "joblock.h"
#include "secret.h"
#include "shmem.h"
#include "token.h"

static int	buildlog_token_scope(const char *name);

/* A bl2 token for the claims, signed with key (palloc'd). */
static char *buildlog_token_make(const char *key, const TokenClaims *claims);

#define TOKEN_PREFIX_V1	"bl1."	/* job, scope, expiry (0.3.0) */
#define TOKEN_PREFIX	"bl2."	/* job, scope, issued, expiry */
#define MAC_LEN			32		/* SHA-256 */
#define MAC_TEXT_LEN	43		/* base64url of 32 bytes, unpadded */
#define KEY_MIN_LEN		32


PG_FUNCTION_INFO_V1(buildlog_issue_token);
PG_FUNCTION_INFO_V1(buildlog_issue_read_token);
PG_FUNCTION_INFO_V1(buildlog_issue_write_token);
PG_FUNCTION_INFO_V1(buildlog_revoke_tokens);
PG_FUNCTION_INFO_V1(buildlog_token_revocations_changed);

static const char *const scope_names[] = {"read", "write", "admin"};

const char *
buildlog_token_scope_name(TokenScope scope)
{
	return scope_names[scope];
}

static int
buildlog_token_scope(const char *name)
{
	for (int i = 0; i < lengthof(scope_names); i++)
		if (strcmp(name, scope_names[i]) == 0)
			return i;
	return -1;
}

char *
buildlog_token_key(void)
{
	char	   *key;

	if (buildlog_http_token_key_file == NULL || buildlog_http_token_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("buildlog.http_token_key_file is not set"),
				 errhint("Put at least %d random bytes into a file readable by the server only (e.g. openssl rand -hex 32), name it in buildlog.http_token_key_file and reload.",
						 KEY_MIN_LEN)));
	key = buildlog_read_secret_file("buildlog.http_token_key_file", buildlog_http_token_key_file);
	if (strlen(key) < KEY_MIN_LEN)
	{
		explicit_bzero(key, strlen(key));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the token key in \"%s\" is too short", buildlog_http_token_key_file),
				 errdetail("A token key needs at least %d bytes.", KEY_MIN_LEN),
				 errhint("Generate one with: openssl rand -hex 32")));
	}
	return key;
}

/* base64url without padding of n bytes into out (room for 4n/3 + 1). */
static void
base64url(const unsigned char *in, size_t n, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t		o = 0;

	for (size_t i = 0; i < n; i += 3)
	{
		uint32		v = (uint32) in[i] << 16;

		if (i + 1 < n)
			v |= (uint32) in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alphabet[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = alphabet[v & 63];
	}
	out[o] = '\0';
}

/* The MAC text of payload under key. */
static void
token_mac(const char *key, const char *payload, size_t len, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (HMAC(EVP_sha256(), key, (int) strlen(key), (const unsigned char *) payload, len,
			 mac, &maclen) == NULL || maclen != MAC_LEN)
		ereport(ERROR, (errmsg("could not compute a token's HMAC-SHA256")));
	base64url(mac, MAC_LEN, out);
	explicit_bzero(mac, sizeof(mac));
}

static char *
buildlog_token_make(const char *key, const TokenClaims *claims)
{
	char	   *payload = psprintf(TOKEN_PREFIX INT64_FORMAT ".%s." INT64_FORMAT "." INT64_FORMAT,
								   claims->job_id, scope_names[claims->scope],
								   claims->issued, claims->expires);
	char		mac[MAC_TEXT_LEN + 1];

	token_mac(key, payload, strlen(payload), mac);
	return psprintf("%s.%s", payload, mac);
}

/* Read a decimal int64 > 0 ending at a dot; false otherwise. */
static bool
read_field(const char **p, int64 *out)
{
	int64		v = 0;

	if (!isdigit((unsigned char) **p))
		return false;
	for (; isdigit((unsigned char) **p); (*p)++)
	{
		if (v > (PG_INT64_MAX - (**p - '0')) / 10)
			return false;
		v = v * 10 + (**p - '0');
	}
	if (**p != '.' || v <= 0)
		return false;
	(*p)++;
	*out = v;
	return true;
}

bool
buildlog_token_check(const char *key, const char *token, TokenClaims *claims,
					 const char **why)
{
	const char *p = token;
	const char *mac_start;
	char		mac[MAC_TEXT_LEN + 1];
	char		scope[8];
	size_t		n;
	int			s;
	bool		v2;

	*why = "The token is not a buildlog job token.";
	if (strlen(token) > 200)
		return false;
	v2 = strncmp(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0;
	if (!v2 && strncmp(p, TOKEN_PREFIX_V1, strlen(TOKEN_PREFIX_V1)) != 0)
		return false;
	p += strlen(TOKEN_PREFIX);	/* as long as TOKEN_PREFIX_V1 */
	claims->issued = 0;			/* bl1: unknown */
	if (!read_field(&p, &claims->job_id))
		return false;
	for (n = 0; p[n] != '.' && p[n] != '\0' && n < sizeof(scope) - 1; n++)
		scope[n] = p[n];
	scope[n] = '\0';
	if (p[n] != '.' || (s = buildlog_token_scope(scope)) < 0)
		return false;
	claims->scope = (TokenScope) s;
	p += n + 1;
	if (v2 && !read_field(&p, &claims->issued))
		return false;
	if (!read_field(&p, &claims->expires))
		return false;
	mac_start = p;
	if (strlen(mac_start) != MAC_TEXT_LEN)
		return false;
	token_mac(key, token, mac_start - 1 - token, mac);
	if (CRYPTO_memcmp(mac, mac_start, MAC_TEXT_LEN) != 0)
	{
		*why = "The token's signature is not valid.";
		return false;
	}
	return true;
}

static void
check_job_id(int64 job_id)
{
	if (job_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id must be positive")));
}

/* Now, in Unix microseconds. */
static int64
unix_now_us(void)
{
	return (int64) GetCurrentTimestamp() + TOKEN_UNIX_EPOCH_OFFSET_US;
}

/*
 * A signed token of job_id with scope, valid for ttl.  Its issue time is
 * read once the job's token lock is shared: a revocation of the job not yet
 * committed is waited for, so the token is issued after it.
 */
static text *
issue(int64 job_id, TokenScope scope, Interval *ttl)
{
	TokenClaims claims;
	LOCKTAG		tag;
	int64		ttl_s;
	char	   *key;
	char	   *token;

	check_job_id(job_id);
	ttl_s = (int64) (ttl->time / USECS_PER_SEC) + (int64) ttl->day * 86400 +
		(int64) ttl->month * 30 * 86400;
	if (ttl_s <= 0 || ttl_s > TOKEN_TTL_MAX_S)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a token's ttl must be between 1 second and 30 days")));
	key = buildlog_token_key();
	buildlog_job_locktag(&tag, job_id, BUILDLOG_LOCK_TOKENS);
	(void) LockAcquire(&tag, ShareLock, false, false);
	claims.job_id = job_id;
	claims.scope = scope;
	claims.issued = unix_now_us();
	claims.expires = claims.issued / USECS_PER_SEC + ttl_s;
	token = buildlog_token_make(key, &claims);
	explicit_bzero(key, strlen(key));
	return cstring_to_text(token);
}

/* issue_token(job_id, scope, ttl): a signed token for the HTTP service. */
Datum
buildlog_issue_token(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *ttl = PG_GETARG_INTERVAL_P(2);
	int			s = buildlog_token_scope(scope);

	check_job_id(job_id);
	if (s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown token scope \"%s\"", scope),
				 errhint("The scopes are read, write and admin.")));
	PG_RETURN_TEXT_P(issue(job_id, (TokenScope) s, ttl));
}

/* issue_read_token(job_id, ttl): a read token, for roles that may mint no other. */
Datum
buildlog_issue_read_token(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(issue(PG_GETARG_INT64(0), TOKEN_READ, PG_GETARG_INTERVAL_P(1)));
}

/* issue_write_token(job_id, ttl): a write token, for roles that may mint no admin one. */
Datum
buildlog_issue_write_token(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(issue(PG_GETARG_INT64(0), TOKEN_WRITE, PG_GETARG_INTERVAL_P(1)));
}

/* ---------------------------------------------------------------- revocation */

static bool revocations_changed = false;	/* by this transaction */
static bool callback_registered = false;

/* At commit: count a change of buildlog.token_revocations (visible by now). */
static void
revocations_xact_callback(XactEvent event, void *arg)
{
	if (!revocations_changed)
		return;
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) &&
		buildlog_shared != NULL)
		pg_atomic_fetch_add_u64(&buildlog_shared->token_revocations, 1);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		revocations_changed = false;
}

/* This transaction changed buildlog.token_revocations: count it at commit. */
static void
revocations_touched(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(revocations_xact_callback, NULL);
		callback_registered = true;
	}
	revocations_changed = true;
}

uint64
buildlog_token_revocations_generation(void)
{
	return buildlog_shared ? pg_atomic_read_u64(&buildlog_shared->token_revocations) : 0;
}

/*
 * revoke_tokens(job_id): the job's tokens issued so far are refused from the
 * commit on.  Waits for the transactions issuing tokens of the job; the
 * revocation time is read after that.  Deletes revocations that refuse no
 * live token any more (older than the longest token lifetime) when the
 * caller may.
 */
Datum
buildlog_revoke_tokens(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	LOCKTAG		tag;
	TimestampTz now;
	Oid			table;
	Datum		args[2];
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};

	check_job_id(job_id);
	buildlog_job_locktag(&tag, job_id, BUILDLOG_LOCK_TOKENS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	now = GetCurrentTimestamp();
	args[0] = Int64GetDatum(job_id);
	args[1] = TimestampTzGetDatum(now);
	SPI_connect();
	if (SPI_execute_with_args("insert into buildlog.token_revocations as r (job_id, revoked_at) "
							  "values ($1, $2) on conflict (job_id) do update "
							  "set revoked_at = greatest(r.revoked_at, excluded.revoked_at)",
							  2, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the revocation of job " INT64_FORMAT, job_id);
	table = RangeVarGetRelid(makeRangeVar("buildlog", "token_revocations", -1), NoLock, false);
	if (pg_class_aclcheck(table, GetUserId(), ACL_DELETE) == ACLCHECK_OK &&
		SPI_execute_with_args("delete from buildlog.token_revocations "
							  "where revoked_at < $2 - interval '30 days'",
							  2, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the expired token revocations");
	SPI_finish();
	revocations_touched();		/* also with the table's trigger disabled */
	PG_RETURN_TIMESTAMPTZ(now);
}

/* The statement trigger of buildlog.token_revocations: count the change at commit. */
Datum
buildlog_token_revocations_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("buildlog.token_revocations_changed() may only be called as a trigger")));
	revocations_touched();
	return PointerGetDatum(NULL);
}

TokenRevocation *
buildlog_token_revocations_read(int *n)
{
	TokenRevocation *out;
	bool		isnull;

	*n = 0;
	if (SPI_execute("select pg_catalog.to_regclass('buildlog.token_revocations') is not null",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look for buildlog.token_revocations");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return NULL;
	if (SPI_execute("select job_id, revoked_at from buildlog.token_revocations "
					"where revoked_at operator(pg_catalog.>) "
					"(pg_catalog.now() operator(pg_catalog.-) interval '30 days')",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read buildlog.token_revocations");
	out = palloc(sizeof(TokenRevocation) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		out[i].job_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		out[i].revoked_us = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull)) +
			TOKEN_UNIX_EPOCH_OFFSET_US;
	}
	*n = (int) SPI_processed;
	return out;
}
