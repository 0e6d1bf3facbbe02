/*-------------------------------------------------------------------------
 * token.h
 *	  Job tokens for the HTTP service: an HMAC-SHA256 over (job id, scope,
 *	  expiry) with the key of buildlog.http_token_key_file, validated offline
 *	  in constant time.
 *
 * A token reads "bl1.<job id>.<scope>.<expiry, Unix seconds>.<MAC>", the MAC
 * (base64url, no padding) over everything before its dot.  Scopes: read
 * (GET), write (upload the job's parts until its final part is stored),
 * admin (everything, set_content).  Tokens and keys are never logged.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_TOKEN_H
#define BUILDLOG_TOKEN_H

#include "postgres.h"

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
	int64		expires;		/* Unix seconds */
} TokenClaims;

/* The key (palloc'd, at least 32 bytes); ERROR when unset or unreadable. */
extern char *buildlog_token_key(void);

/* A token for the claims, signed with key (palloc'd). */
extern char *buildlog_token_make(const char *key, const TokenClaims *claims);

/*
 * Check a token's form and MAC (constant time) and fill *claims; false with
 * *why when it is not one of ours.  Expiry, job and scope are the caller's.
 */
extern bool buildlog_token_check(const char *key, const char *token, TokenClaims *claims,
								 const char **why);

/* The scope's name, and back (-1: unknown). */
extern const char *buildlog_token_scope_name(TokenScope scope);
extern int	buildlog_token_scope(const char *name);

#endif							/* BUILDLOG_TOKEN_H */
