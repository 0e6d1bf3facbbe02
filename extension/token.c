/*-------------------------------------------------------------------------
 * token.c
 *	  Job tokens: making, checking, and issue_token() (see token.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "secret.h"
#include "token.h"

#define TOKEN_PREFIX	"bl1."
#define MAC_LEN			32		/* SHA-256 */
#define MAC_TEXT_LEN	43		/* base64url of 32 bytes, unpadded */
#define KEY_MIN_LEN		32
#define TTL_MAX_S		(30 * 86400)

PG_FUNCTION_INFO_V1(buildlog_issue_token);

static const char *const scope_names[] = {"read", "write", "admin"};

const char *
buildlog_token_scope_name(TokenScope scope)
{
	return scope_names[scope];
}

int
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

char *
buildlog_token_make(const char *key, const TokenClaims *claims)
{
	char	   *payload = psprintf(TOKEN_PREFIX INT64_FORMAT ".%s." INT64_FORMAT,
								   claims->job_id, scope_names[claims->scope], claims->expires);
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

	*why = "The token is not a buildlog job token.";
	if (strlen(token) > 200 || strncmp(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return false;
	p += strlen(TOKEN_PREFIX);
	if (!read_field(&p, &claims->job_id))
		return false;
	for (n = 0; p[n] != '.' && p[n] != '\0' && n < sizeof(scope) - 1; n++)
		scope[n] = p[n];
	scope[n] = '\0';
	if (p[n] != '.' || (s = buildlog_token_scope(scope)) < 0)
		return false;
	claims->scope = (TokenScope) s;
	p += n + 1;
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

/* issue_token(job_id, scope, ttl): a signed token for the HTTP service. */
Datum
buildlog_issue_token(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *ttl = PG_GETARG_INTERVAL_P(2);
	TokenClaims claims;
	int64		ttl_s;
	char	   *key;
	char	   *token;
	int			s = buildlog_token_scope(scope);

	if (job_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id must be positive")));
	if (s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown token scope \"%s\"", scope),
				 errhint("The scopes are read, write and admin.")));
	ttl_s = (int64) (ttl->time / USECS_PER_SEC) + (int64) ttl->day * 86400 +
		(int64) ttl->month * 30 * 86400;
	if (ttl_s <= 0 || ttl_s > TTL_MAX_S)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a token's ttl must be between 1 second and 30 days")));
	claims.job_id = job_id;
	claims.scope = (TokenScope) s;
	claims.expires = (int64) time(NULL) + ttl_s;
	key = buildlog_token_key();
	token = buildlog_token_make(key, &claims);
	explicit_bzero(key, strlen(key));
	PG_RETURN_TEXT_P(cstring_to_text(token));
}
