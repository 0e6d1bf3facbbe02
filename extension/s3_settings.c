/*-------------------------------------------------------------------------
 * s3_settings.c
 *	  The buildlog.s3_* settings: their check hooks, the target a request
 *	  is sent to (key files read when named), and the checks a target and
 *	  key pass before any request.
 *
 * One function says what is wrong with each kind of value (endpoint URL,
 * bucket name, region, key prefix), so a setting is refused at SET or
 * reload with the same words a request would ERROR with.  The credentials
 * are checked for shape only and never appear in a message.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guc.h"
#include "s3_internal.h"
#include "secret.h"

#define S3_MAX_KEY_LEN 1024

/* ------------------------------------------------------------ values */

/* Split an endpoint URL; returns what is wrong with it, or NULL. */
const char *
buildlog_s3_parse_endpoint(const char *endpoint, S3Endpoint *ep)
{
	const char *rest;
	const char *slash;
	const char *p;
	size_t		alen;

	if (pg_strncasecmp(endpoint, "http://", 7) == 0)
		rest = endpoint + 7;
	else if (pg_strncasecmp(endpoint, "https://", 8) == 0)
		rest = endpoint + 8;
	else
		return "The endpoint must start with http:// or https://.";
	for (p = endpoint; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f)
			return "The endpoint must not contain spaces, control characters, a query or a fragment.";
	slash = strchr(rest, '/');
	alen = slash ? (size_t) (slash - rest) : strlen(rest);
	if (alen == 0)
		return "The endpoint has no host.";
	if (memchr(rest, '@', alen))
		return "The endpoint must not contain credentials; use buildlog.s3_access_key and buildlog.s3_secret_key.";
	if (ep == NULL)
		return NULL;
	ep->https = (rest != endpoint + 7);
	ep->authority = pnstrdup(rest, alen);
	ep->ip_literal = (rest[0] == '[' ||
					  strspn(ep->authority, "0123456789.:") == alen);
	ep->path = pstrdup(slash ? slash : "");
	while (*ep->path && ep->path[strlen(ep->path) - 1] == '/')
		ep->path[strlen(ep->path) - 1] = '\0';
	return NULL;
}

/* What is wrong with a bucket name for the addressing style, or NULL. */
static const char *
s3_bucket_problem(const char *bucket, bool path_style)
{
	size_t		len = strlen(bucket);

	if (len == 0 || len > 255)
		return "The bucket name must have 1 to 255 characters.";
	if (strspn(bucket, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != len)
		return "The bucket name may hold only letters, digits, '.', '-' and '_'.";
	if (!path_style &&
		(len < 3 || len > 63 || strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len ||
		 bucket[0] == '.' || bucket[0] == '-'))
		return "Virtual-host addressing needs a DNS-compatible bucket name (3 to 63 lowercase letters, digits, '.' and '-').";
	return NULL;
}

/* What is wrong with a signing region, or NULL. */
static const char *
s3_region_problem(const char *region)
{
	size_t		len = strlen(region);

	if (len == 0 || len > 64 ||
		strspn(region, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len)
		return "The region must have 1 to 64 letters, digits, '-' or '_' (e.g. us-east-1).";
	return NULL;
}

/* What is wrong with a key prefix, or NULL: no leading '/', printable. */
static const char *
s3_prefix_problem(const char *prefix)
{
	const char *p;

	if (*prefix == '/')
		return "The prefix must not start with '/'.";
	if (strlen(prefix) > 512)
		return "The prefix must have at most 512 bytes.";
	for (p = prefix; *p; p++)
		if ((unsigned char) *p < ' ' || *p == 0x7f)
			return "The prefix must not contain control characters.";
	return NULL;
}

/* Whether a credential is printable ASCII without spaces (never shown). */
static bool
s3_credential_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f)
			return false;
	return true;
}

/* ERROR unless the target and key can be used for a request. */
void
buildlog_s3_check_request(const S3Target *t, const char *key, S3Endpoint *ep)
{
	const char *problem;

	if (t->endpoint == NULL || *t->endpoint == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no S3 endpoint is configured"),
				 errhint("Set buildlog.s3_endpoint, e.g. to https://s3.us-east-1.amazonaws.com.")));
	if ((problem = buildlog_s3_parse_endpoint(t->endpoint, ep)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 endpoint \"%s\" cannot be used", t->endpoint),
				 errdetail("%s", problem)));
	if ((problem = s3_bucket_problem(t->bucket ? t->bucket : "", t->path_style)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 bucket \"%s\" cannot be used", t->bucket ? t->bucket : ""),
				 errdetail("%s", problem),
				 errhint("Use a DNS-compatible name, or set buildlog.s3_path_style = on.")));
	if (!t->path_style && ep->ip_literal)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 endpoint \"%s\" cannot be used with virtual-host addressing",
						t->endpoint),
				 errdetail("Virtual-host addressing puts the bucket into the host name, which needs a DNS name, not an IP address."),
				 errhint("Set buildlog.s3_path_style = on.")));
	if ((problem = s3_region_problem(t->region ? t->region : "")) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 region \"%s\" cannot be used", t->region ? t->region : ""),
				 errdetail("%s", problem)));
	if (!s3_credential_ok(t->access_key) || !s3_credential_ok(t->secret_key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 credentials are missing or malformed"),
				 errdetail("The access key and the secret key must be set, as printable ASCII without spaces."),
				 errhint("Set buildlog.s3_access_key and buildlog.s3_secret_key in postgresql.conf and reload.")));
	if (key == NULL || *key == '\0' || strlen(key) > S3_MAX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("S3 object key must have 1 to %d bytes", S3_MAX_KEY_LEN)));
}

/* Fill a target from the buildlog.s3_* settings; ERROR when incomplete. */
void
buildlog_s3_target(S3Target *target)
{
	if (buildlog_s3_endpoint == NULL || *buildlog_s3_endpoint == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("buildlog.s3_endpoint is not set"),
				 errhint("Set buildlog.s3_endpoint, s3_bucket, s3_region, s3_access_key and s3_secret_key in postgresql.conf and reload.")));
	target->endpoint = buildlog_s3_endpoint;
	target->bucket = buildlog_s3_bucket;
	target->region = buildlog_s3_region;
	target->access_key = buildlog_s3_access_key;
	target->secret_key = buildlog_s3_secret_key;
	/* a key file, when named, wins over the plain setting; read when needed */
	if (buildlog_s3_access_key_file && *buildlog_s3_access_key_file)
		target->access_key = buildlog_read_secret_file("buildlog.s3_access_key_file",
											  buildlog_s3_access_key_file);
	if (buildlog_s3_secret_key_file && *buildlog_s3_secret_key_file)
		target->secret_key = buildlog_read_secret_file("buildlog.s3_secret_key_file",
											  buildlog_s3_secret_key_file);
	target->path_style = buildlog_s3_path_style;
	target->timeout_s = buildlog_s3_timeout_s;
	target->request_timeout_ms = buildlog_s3_request_timeout_ms;
	target->owner = NULL;
}

/* ---------------------------------------------------------- GUC checks */

/* A check hook's verdict on a value: its problem as errdetail, or true. */
static bool
s3_guc_verdict(const char *problem)
{
	if (problem == NULL)
		return true;
	GUC_check_errdetail("%s", problem);
	return false;
}

/* Check hook of buildlog.s3_endpoint: empty, or http(s)://host[:port][/path]. */
bool
buildlog_s3_check_endpoint(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
		return true;
	return s3_guc_verdict(buildlog_s3_parse_endpoint(*newval, NULL));
}

/* Check hook of buildlog.s3_bucket (any addressing style). */
bool
buildlog_s3_check_bucket(char **newval, void **extra, GucSource source)
{
	return s3_guc_verdict(s3_bucket_problem(*newval ? *newval : "", true));
}

/* Check hook of buildlog.s3_region. */
bool
buildlog_s3_check_region(char **newval, void **extra, GucSource source)
{
	return s3_guc_verdict(s3_region_problem(*newval ? *newval : ""));
}

/* Check hook of buildlog.s3_prefix. */
bool
buildlog_s3_check_prefix(char **newval, void **extra, GucSource source)
{
	return s3_guc_verdict(*newval ? s3_prefix_problem(*newval) : NULL);
}
