/*-------------------------------------------------------------------------
 * auth.h
 *	  Job tokens of HTTP requests and their revocations (auth.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_AUTH_H
#define BUILDLOG_HTTP_AUTH_H

#include "http/server.h"
#include "token.h"

/*
 * Is the request's token (Authorization: Bearer, or ?token= for reads) a
 * live token of job_id allowed to do need?  False with the refusal (401,
 * 403, 503) in r; *claims gets what the token says.  Tokens are never
 * logged.
 */
extern bool buildlog_http_authorize(HttpWorker *h, struct MHD_Connection *conn, int64 job_id,
									TokenScope need, HttpResponse *r, TokenClaims *claims);

/*
 * The same checks of a token given as a string (travis-logs' per-part
 * "tok" of POST /log-parts/multi), outside any transaction.
 */
extern bool buildlog_http_authorize_token(HttpWorker *h, const char *token, int64 job_id,
										  TokenScope need, HttpResponse *r,
										  TokenClaims *claims);

/*
 * Did a revocation commit since the worker last read them?  Then
 * buildlog_http_revocations_refresh() reads them again (false when it
 * could not), and buildlog_http_revoked() tells whether an open request's
 * token is now revoked: open event streams and uploads end.
 */
extern bool buildlog_http_revocations_moved(void);
extern bool buildlog_http_revocations_refresh(HttpWorker *h);
extern bool buildlog_http_revoked(const TokenClaims *claims);

/* (Re)read the token key (at start and after a reload); says why not once. */
extern void buildlog_http_load_key(HttpWorker *h);

#endif							/* BUILDLOG_HTTP_AUTH_H */
