/*-------------------------------------------------------------------------
 * token.h
 *	  Job tokens for the HTTP service: an HMAC-SHA256 over (job id, scope,
 *	  issue time, expiry) with the key of buildlog.http_token_key_file,
 *	  validated offline in constant time, and their revocation.
 *
 * A token reads "bl2.<job id>.<scope>.<issued, Unix microseconds>.<expiry,
 * Unix seconds>.<MAC>", the MAC (base64url, no padding) over everything
 * before its dot.  Tokens of 0.3.0, "bl1.<job id>.<scope>.<expiry>.<MAC>",
 * carry no issue time: they are still accepted for jobs whose tokens were
 * never revoked.  Scopes: read (GET), write (upload the job's parts until
 * its final part is stored), admin (everything, set_content).  Tokens and
 * keys are never logged.
 *
 * Revocation: buildlog.revoke_tokens(job) records in the table
 * buildlog.token_revocations the time after which the job's tokens must
 * have been issued; every commit that changes that table bumps a counter in
 * shared memory, and the HTTP worker reads the table again when it moved.
 * Issuing a job's token takes a share lock of the job's token key and
 * revoking it an exclusive one (advisory locks of buildlog's own), so a
 * token issued while a revocation is not yet committed waits for it, and
 * carries a later issue time.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_TOKEN_H
#define BUILDLOG_TOKEN_H

#include "postgres.h"

#include "datatype/timestamp.h"

typedef enum TokenScope
{
	TOKEN_READ,
	TOKEN_WRITE,
	TOKEN_ADMIN
} TokenScope;

/* What a valid token says. */
typedef struct TokenClaims
{
	int64		job_id;
	TokenScope	scope;
	int64		issued;			/* Unix microseconds; 0: a bl1 token */
	int64		expires;		/* Unix seconds */
} TokenClaims;

/* The key (palloc'd, at least 32 bytes); ERROR when unset or unreadable. */
extern char *buildlog_token_key(void);

/*
 * Check a token's form and MAC (constant time) and fill *claims; false with
 * *why when it is not one of ours.  Expiry, job and scope are the caller's.
 */
extern bool buildlog_token_check(const char *key, const char *token, TokenClaims *claims,
								 const char **why);

/* The scope's name ("read", "write", "admin"). */
extern const char *buildlog_token_scope_name(TokenScope scope);

/* Tokens are valid 30 days at most: older revocations refuse nothing alive. */
#define TOKEN_TTL_MAX_S		(30 * 86400)

/* Unix microseconds (tokens' issue times) minus these are a TimestampTz. */
#define TOKEN_UNIX_EPOCH_OFFSET_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* A job's revocation: its tokens issued up to revoked_us are refused. */
typedef struct TokenRevocation
{
	int64		job_id;
	int64		revoked_us;		/* Unix microseconds */
} TokenRevocation;

/*
 * The revocations that can still refuse a live token (younger than
 * TOKEN_TTL_MAX_S), read through SPI (connected, in a transaction); palloc'd,
 * *n of them.  None when the table is not there (the extension missing, or
 * its schema older than 0.3.1).
 */
extern TokenRevocation *buildlog_token_revocations_read(int *n);

/* Bumped by every commit that changed buildlog.token_revocations (0: not preloaded). */
extern uint64 buildlog_token_revocations_generation(void);

/* Does a revocation of the token's job at revoked_us refuse it?  bl1 tokens: always. */
static inline bool
buildlog_token_revoked(const TokenClaims *claims, int64 revoked_us)
{
	return claims->issued <= revoked_us;
}

#endif							/* BUILDLOG_TOKEN_H */
