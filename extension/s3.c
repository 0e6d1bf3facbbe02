/*-------------------------------------------------------------------------
 * s3.c
 *	  PUT, HEAD and GET of S3 objects with libcurl's multi interface and
 *	  its AWS Signature V4 signing (CURLOPT_AWS_SIGV4).
 *
 * One exchange = one curl easy handle in a private multi handle, driven by
 * a loop in this file.  libcurl's callbacks only copy bytes between curl
 * and a fixed buffer and record failures in fixed-size fields: they never
 * allocate with palloc, ereport or touch the database.  When the buffer
 * runs dry (upload) or full (download) the callback pauses the transfer;
 * the loop then refills or drains it through the caller's source or sink,
 * which may do anything PostgreSQL code does, and resumes the transfer.
 * Every handle, list and buffer libcurl, OpenSSL or zlib malloc'd is freed
 * in PG_FINALLY, also when a source, a sink or an interrupt raises.
 *
 * libcurl (7.88) signs the headers the caller supplies plus Host and
 * x-amz-date, and takes the payload hash from our x-amz-content-sha256
 * header; buildlog.s3_signature_selftest() proves both against AWS's
 * published examples.  Credentials go only to CURLOPT_USERNAME and
 * CURLOPT_PASSWORD: never into a URL, an error text or a log line, and
 * CURLOPT_VERBOSE is on only in the self-test, whose debug callback keeps
 * the Authorization header of AWS's example key in memory.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "guc.h"
#include "s3.h"
#include "secret.h"
#include "s3_payload.h"

#define S3_POLL_MS 100			/* longest wait between interrupt checks */
#define S3_ERRBODY_LEN 2048		/* kept of an error response's XML */
#define S3_MAX_KEY_LEN 1024
#define S3_CONTENT_TYPE "text/plain; charset=utf-8"
#define S3_EMPTY_PAYLOAD_HEADER \
	("x-amz-content-sha256: " \
	 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

/* The parts of buildlog.s3_endpoint. */
typedef struct S3Endpoint
{
	bool		https;
	char	   *authority;		/* host[:port] */
	bool		ip_literal;
	char	   *path;			/* "" or "/base", no trailing slash */
} S3Endpoint;

/* One request and its response, shared by the loop and curl's callbacks. */
typedef struct S3Exchange
{
	CURL	   *easy;
	S3Result   *result;

	/* upload: the source's bytes (gzipped), checked against the digest */
	bool		upload;
	const S3Source *source;
	bool		gzip;
	S3Producer	producer;
	const S3Digest *expect;
	S3Hash		sent;
	bool		body_done;
	bool		need_fill;

	/* download: the bytes go through the consumer to the sink */
	bool		download;
	bool		decode;
	const S3Sink *sink;
	S3Consumer	consumer;
	bool		consumer_ready;
	bool		need_drain;

	/* S3_SLICE bytes between curl and the producer or consumer */
	char	   *buf;
	Size		buf_len;
	Size		buf_pos;

	char		reason[64];		/* of the status line */
	char		errbody[S3_ERRBODY_LEN];
	Size		errbody_len;

	/* a failure noticed here, reported instead of curl's */
	bool		failed;
	S3Outcome	fail_outcome;
	char		fail_error[S3_ERROR_LEN];
	char		curl_error[CURL_ERROR_SIZE];

	/* self-test only: where to connect, and the Authorization sent */
	const char *connect_to;
	const char *resolve;
	bool		captured;
	char		authorization[512];
} S3Exchange;

static bool curl_ready = false;

S3ClientCounters buildlog_s3_counters;


/* libcurl's global state, set up by the first request of this process. */
static void
s3_curl_init(void)
{
	CURLcode	rc;

	if (curl_ready)
		return;
	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl"),
				 errdetail("%s", curl_easy_strerror(rc))));
	curl_ready = true;
}

/* Record the first failure noticed; safe in a curl callback. */
static void
s3_fail(S3Exchange *x, S3Outcome outcome, const char *error)
{
	if (x->failed)
		return;
	x->failed = true;
	x->fail_outcome = outcome;
	strlcpy(x->fail_error, error, sizeof(x->fail_error));
}

/* ---------------------------------------------------------------- names */

/* Split an endpoint URL; returns what is wrong with it, or NULL. */
static const char *
s3_parse_endpoint(const char *endpoint, S3Endpoint *ep)
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
static void
s3_check_request(const S3Target *t, const char *key, S3Endpoint *ep)
{
	const char *problem;

	if (t->endpoint == NULL || *t->endpoint == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no S3 endpoint is configured"),
				 errhint("Set buildlog.s3_endpoint, e.g. to https://s3.us-east-1.amazonaws.com.")));
	if ((problem = s3_parse_endpoint(t->endpoint, ep)) != NULL)
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

/* Append s percent-encoded as S3's canonical URI wants ('/' kept if asked). */
static void
s3_append_encoded(StringInfo buf, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
			c == '~' || (c == '/' && keep_slash))
			appendStringInfoChar(buf, (char) c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[c >> 4]);
			appendStringInfoChar(buf, hex[c & 15]);
		}
	}
}

/* The object's URL, path style or virtual-host style. */
static char *
s3_object_url(const S3Target *t, const S3Endpoint *ep, const char *key)
{
	StringInfoData url;

	initStringInfo(&url);
	appendStringInfoString(&url, ep->https ? "https://" : "http://");
	if (!t->path_style)
		appendStringInfo(&url, "%s.", t->bucket);
	appendStringInfoString(&url, ep->authority);
	appendStringInfoString(&url, ep->path);
	if (t->path_style)
	{
		appendStringInfoChar(&url, '/');
		s3_append_encoded(&url, t->bucket, false);
	}
	appendStringInfoChar(&url, '/');
	s3_append_encoded(&url, key, true);
	return url.data;
}

/* The key of a job's archived log: <prefix>jobs/<job_id>/log.txt. */
char *
buildlog_s3_key_for_job(const char *prefix, int64 job_id)
{
	return psprintf("%sjobs/" INT64_FORMAT "/log.txt", prefix ? prefix : "",
					job_id);
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
}

/* ------------------------------------------------------ curl callbacks */

/* Copy s without surrounding blanks and line ends; safe in a callback. */
static void
s3_copy_trimmed(const char *s, size_t n, char *out, size_t outlen)
{
	size_t		len;

	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' ||
					 s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	len = Min(n, outlen - 1);
	memcpy(out, s, len);
	out[len] = '\0';
}

/* Copy a header's value if the line is "name: value"; safe in a callback. */
static bool
s3_header_value(const char *line, size_t n, const char *name,
				char *out, size_t outlen)
{
	size_t		nlen = strlen(name);

	if (n <= nlen || line[nlen] != ':' || pg_strncasecmp(line, name, nlen) != 0)
		return false;
	s3_copy_trimmed(line + nlen + 1, n - nlen - 1, out, outlen);
	return true;
}

/* CURLOPT_HEADERFUNCTION: keep the headers we report. */
static size_t
s3_header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	S3Exchange *x = (S3Exchange *) arg;
	S3Result   *r = x->result;
	size_t		n = size * nitems;
	char		value[S3_HEADER_LEN];

	if (n > 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		/* a new response (after 100 Continue, say): forget the last one */
		const char *end = line + n;
		const char *sp = memchr(line, ' ', n);

		r->etag[0] = r->content_type[0] = r->content_encoding[0] = '\0';
		r->meta_sha256[0] = '\0';
		r->content_length = -1;
		r->range_first = r->range_last = r->range_total = -1;
		x->reason[0] = '\0';
		/* "HTTP/1.1 404 Not Found": the reason follows the second space */
		if (sp && (sp = memchr(sp + 1, ' ', end - sp - 1)) != NULL)
			s3_copy_trimmed(sp + 1, end - sp - 1, x->reason, sizeof(x->reason));
	}
	else if (s3_header_value(line, n, "ETag", value, sizeof(value)))
	{
		size_t		len = strlen(value);

		if (len >= 2 && value[0] == '"' && value[len - 1] == '"')
		{
			value[len - 1] = '\0';
			memmove(value, value + 1, len - 1);
		}
		strlcpy(r->etag, value, sizeof(r->etag));
	}
	else if (s3_header_value(line, n, "Content-Length", value, sizeof(value)))
		r->content_length = strtoll(value, NULL, 10);
	else if (s3_header_value(line, n, "Content-Type", value, sizeof(value)))
		strlcpy(r->content_type, value, sizeof(r->content_type));
	else if (s3_header_value(line, n, "Content-Encoding", value, sizeof(value)))
		strlcpy(r->content_encoding, value, sizeof(r->content_encoding));
	else if (s3_header_value(line, n, "x-amz-meta-sha256", value, sizeof(value)))
		strlcpy(r->meta_sha256, value, sizeof(r->meta_sha256));
	else if (s3_header_value(line, n, "Content-Range", value, sizeof(value)))
	{
		long long	first,
					last,
					total;

		/* "bytes first-last/total"; anything else stays -1 (not trusted) */
		if (sscanf(value, "bytes %lld-%lld/%lld", &first, &last, &total) == 3)
		{
			r->range_first = first;
			r->range_last = last;
			r->range_total = total;
		}
	}
	return n;
}

/* CURLOPT_READFUNCTION: serve the buffer; pause when the loop must refill. */
static size_t
s3_read_cb(char *out, size_t size, size_t nitems, void *arg)
{
	S3Exchange *x = (S3Exchange *) arg;
	size_t		n;

	if (x->failed)
		return CURL_READFUNC_ABORT;
	if (x->buf_pos == x->buf_len)
	{
		if (x->body_done)
			return 0;
		x->need_fill = true;
		return CURL_READFUNC_PAUSE;
	}
	n = Min(size * nitems, x->buf_len - x->buf_pos);
	memcpy(out, x->buf + x->buf_pos, n);
	x->buf_pos += n;
	return n;
}

/* CURLOPT_WRITEFUNCTION: buffer a 2xx body, keep an error document. */
static size_t
s3_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	S3Exchange *x = (S3Exchange *) arg;
	size_t		n = size * nmemb;
	long		status = 0;

	if (x->failed)
		return 0;				/* CURLE_WRITE_ERROR ends the transfer */
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (!x->download || status < 200 || status >= 300)
	{
		size_t		room = sizeof(x->errbody) - 1 - x->errbody_len;
		size_t		keep = Min(room, n);

		if (status >= 300 && keep > 0)
		{
			memcpy(x->errbody + x->errbody_len, data, keep);
			x->errbody_len += keep;
			x->errbody[x->errbody_len] = '\0';
		}
		return n;
	}
	if (n > S3_SLICE)
	{
		s3_fail(x, S3_RETRYABLE, "A block from libcurl was larger than the receive buffer");
		return 0;
	}
	if (x->buf_len + n > S3_SLICE)
	{
		x->need_drain = true;
		return CURL_WRITEFUNC_PAUSE;	/* curl delivers it again later */
	}
	memcpy(x->buf + x->buf_len, data, n);
	x->buf_len += n;
	return n;
}

/* CURLOPT_DEBUGFUNCTION (self-test only): keep the Authorization sent. */
static int
s3_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	static const char name[] = "\nAuthorization: ";
	S3Exchange *x = (S3Exchange *) arg;
	size_t		i;

	if (type != CURLINFO_HEADER_OUT || x->captured)
		return 0;
	for (i = 0; i + sizeof(name) - 1 <= size; i++)
	{
		if (memcmp(data + i, name, sizeof(name) - 1) == 0)
		{
			const char *v = data + i + sizeof(name) - 1;
			size_t		len = 0;

			while (v + len < data + size && v[len] != '\r' && v[len] != '\n' &&
				   len < sizeof(x->authorization) - 1)
				len++;
			memcpy(x->authorization, v, len);
			x->authorization[len] = '\0';
			x->captured = true;
			break;
		}
	}
	return 0;
}

/* CURLOPT_XFERINFOFUNCTION (self-test only): stop once the request is out. */
static int
s3_selftest_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
						curl_off_t ultotal, curl_off_t ulnow)
{
	return ((S3Exchange *) arg)->captured ? 1 : 0;
}

/* ------------------------------------------------------------- the loop */

/* Refill the upload buffer from the producer, checking it against the digest. */
static void
s3_fill(S3Exchange *x)
{
	const S3Digest *expect = x->expect;
	char		error[S3_ERROR_LEN];
	Size		n;

	x->buf_pos = x->buf_len = 0;
	if (x->failed || x->body_done)
		return;
	n = buildlog_s3_producer_read(&x->producer, x->buf, S3_SLICE);
	if (x->source->stable)
		x->sent.size += n;		/* sizes only: see S3Source.stable */
	else
		buildlog_s3_hash_update(&x->sent, x->buf, n);
	if (x->sent.size > expect->size ||
		(x->sent.size < expect->size && n == 0))
	{
		snprintf(error, sizeof(error),
				 "The source gave %s than the " UINT64_FORMAT " bytes of its digest",
				 x->sent.size > expect->size ? "more" : "fewer", expect->size);
		s3_fail(x, S3_BAD_DATA, error);
		return;
	}
	if (x->sent.size == expect->size)
	{
		char		more[64];
		S3Digest	sent;

		if (buildlog_s3_producer_read(&x->producer, more, sizeof(more)) > 0)
		{
			snprintf(error, sizeof(error),
					 "The source gave more than the " UINT64_FORMAT " bytes of its digest",
					 expect->size);
			s3_fail(x, S3_BAD_DATA, error);
			return;
		}
		buildlog_s3_hash_final(&x->sent, &sent);
		if (!x->source->stable && strcmp(sent.sha256, expect->sha256) != 0)
		{
			s3_fail(x, S3_BAD_DATA,
					"The source changed between the digest and the upload (SHA-256 differs)");
			return;
		}
		x->body_done = true;	/* only now may curl have the last bytes */
	}
	x->buf_len = n;
}

/* Pass the download buffer through the consumer to the sink. */
static void
s3_drain(S3Exchange *x)
{
	char		error[S3_ERROR_LEN];

	if (!x->consumer_ready)
	{
		/* headers are complete once body bytes arrive */
		buildlog_s3_consumer_init(&x->consumer, x->sink,
								  x->decode &&
								  pg_strcasecmp(x->result->content_encoding, "gzip") == 0);
		x->consumer_ready = true;
	}
	buildlog_s3_counters.received_bytes += x->buf_len;
	if (!x->failed && x->buf_len > 0 &&
		!buildlog_s3_consumer_write(&x->consumer, x->buf, x->buf_len, error))
		s3_fail(x, S3_BAD_DATA, error);
	x->buf_len = 0;
}

/* Resume a transfer paused by a callback. */
static void
s3_resume(S3Exchange *x)
{
	CURLcode	rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);

	if (rc != CURLE_OK)
		s3_fail(x, S3_RETRYABLE, curl_easy_strerror(rc));
}

/* Drive the transfer to its end, serving pauses and interrupts. */
static CURLcode
s3_run(CURLM *multi, S3Exchange *x)
{
	CURLcode	code = CURLE_OK;
	CURLMsg    *msg;
	int			running = 1;
	int			left;

	for (;;)
	{
		CURLMcode	mc;

		if (x->need_fill)
		{
			x->need_fill = false;
			s3_fill(x);
			s3_resume(x);
		}
		if (x->need_drain)
		{
			x->need_drain = false;
			s3_drain(x);
			s3_resume(x);
		}
		mc = curl_multi_perform(multi, &running);
		if (mc == CURLM_OK && running > 0 && !x->need_fill && !x->need_drain)
			mc = curl_multi_poll(multi, NULL, 0, S3_POLL_MS, NULL);
		if (mc != CURLM_OK)
		{
			s3_fail(x, S3_RETRYABLE, curl_multi_strerror(mc));
			return CURLE_FAILED_INIT;
		}
		CHECK_FOR_INTERRUPTS();
		if (running == 0)
			break;
	}
	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			code = msg->data.result;
	return code;
}

/* ------------------------------------------------------ classification */

/* Whether retrying a failed curl transfer later may help. */
static S3Outcome
s3_curl_outcome(CURLcode code)
{
	switch (code)
	{
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_NOT_BUILT_IN:
		case CURLE_BAD_FUNCTION_ARGUMENT:
		case CURLE_LOGIN_DENIED:
		case CURLE_TOO_MANY_REDIRECTS:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			return S3_PERMANENT;
		default:
			return S3_RETRYABLE;	/* connect, resolve, timeout, reset... */
	}
}

/* Copy the text of <tag>...</tag> in an S3 error document, if there. */
static void
s3_xml_field(const char *xml, const char *tag, char *out, size_t outlen)
{
	char		open[32];
	char		close[32];
	const char *start;
	const char *end;
	size_t		len;

	out[0] = '\0';
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((start = strstr(xml, open)) == NULL)
		return;
	start += strlen(open);
	if ((end = strstr(start, close)) == NULL)
		return;
	len = Min((size_t) (end - start), outlen - 1);
	memcpy(out, start, len);
	out[len] = '\0';
	/* error texts end without a period; the report adds its own */
	while (len > 0 && (out[len - 1] == '.' || out[len - 1] == ' '))
		out[--len] = '\0';
}

/* Outcome and error text of an HTTP error response. */
static void
s3_http_outcome(S3Exchange *x)
{
	S3Result   *r = x->result;
	char		code[64];
	char		message[160];

	s3_xml_field(x->errbody, "Code", code, sizeof(code));
	s3_xml_field(x->errbody, "Message", message, sizeof(message));
	if (r->status == 404 && strcmp(code, "NoSuchBucket") != 0)
		r->outcome = S3_NOT_FOUND;
	else if (r->status >= 500 || r->status == 408 || r->status == 429 ||
			 strcmp(code, "RequestTimeout") == 0 ||
			 strcmp(code, "SlowDown") == 0 ||
			 strcmp(code, "OperationAborted") == 0)
		r->outcome = S3_RETRYABLE;
	else
		r->outcome = S3_PERMANENT;
	if (code[0])
		snprintf(r->error, sizeof(r->error), "HTTP %ld %s%s%s", r->status, code,
				 message[0] ? ": " : "", message);
	else
		snprintf(r->error, sizeof(r->error), "HTTP %ld%s%s", r->status,
				 x->reason[0] ? " " : "", x->reason);
}

/* Fill result->outcome and result->error once the transfer ended. */
static void
s3_classify(S3Exchange *x, CURLcode code)
{
	S3Result   *r = x->result;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (!x->failed && code == CURLE_OK && x->download &&
		r->status >= 200 && r->status < 300)
	{
		char		error[S3_ERROR_LEN];

		s3_drain(x);			/* what is left in the buffer */
		if (!buildlog_s3_consumer_finish(&x->consumer, &r->received, error))
			s3_fail(x, S3_BAD_DATA, error);
		r->sink_bytes = x->consumer.sink_bytes;
	}
	if (x->failed)
	{
		r->outcome = x->fail_outcome;
		strlcpy(r->error, x->fail_error, sizeof(r->error));
	}
	else if (r->status >= 300)
		s3_http_outcome(x);		/* even if the server then cut the upload */
	else if (code != CURLE_OK)
	{
		r->outcome = s3_curl_outcome(code);
		snprintf(r->error, sizeof(r->error), "%s",
				 x->curl_error[0] ? x->curl_error : curl_easy_strerror(code));
	}
	else if (r->status >= 200 && r->status < 300)
	{
		r->outcome = S3_OK;
		r->error[0] = '\0';
	}
	else
		s3_http_outcome(x);
}

/* ------------------------------------------------------------ requests */

/* Set the options every request shares, and the method's. */
static void
s3_set_options(CURL *easy, S3Exchange *x, const S3Target *t, const char *method,
			   const char *url, const char *sigv4, struct curl_slist *headers,
			   struct curl_slist *connect_to, struct curl_slist *resolve)
{
	long		timeout = Max(t->timeout_s, 1);
	long		total_ms = t->request_timeout_ms > 0 ? t->request_timeout_ms : 300000L;
	bool		ok = true;

#define SETOPT(opt, val) (ok = ok && curl_easy_setopt(easy, opt, val) == CURLE_OK)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_PATH_AS_IS, 1L);
	SETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_AWS_SIGV4, sigv4);
	SETOPT(CURLOPT_USERNAME, t->access_key);
	SETOPT(CURLOPT_PASSWORD, t->secret_key);
	SETOPT(CURLOPT_HTTPHEADER, headers);
	SETOPT(CURLOPT_ERRORBUFFER, x->curl_error);
	SETOPT(CURLOPT_CONNECTTIMEOUT, timeout);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, timeout);
	SETOPT(CURLOPT_TIMEOUT_MS, total_ms);	/* the whole request, whatever happens */
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_HEADERFUNCTION, s3_header_cb);
	SETOPT(CURLOPT_HEADERDATA, x);
	SETOPT(CURLOPT_WRITEFUNCTION, s3_write_cb);
	SETOPT(CURLOPT_WRITEDATA, x);
	if (strcmp(method, "PUT") == 0)
	{
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, s3_read_cb);
		SETOPT(CURLOPT_READDATA, x);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t) x->expect->size);
	}
	else if (strcmp(method, "HEAD") == 0)
		SETOPT(CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "DELETE") == 0)
		SETOPT(CURLOPT_CUSTOMREQUEST, "DELETE");
	if (connect_to)
	{
		/* self-test: the example's host is 127.0.0.1, no proxy, capture */
		SETOPT(CURLOPT_CONNECT_TO, connect_to);
		SETOPT(CURLOPT_RESOLVE, resolve);
		SETOPT(CURLOPT_PROXY, "");
		SETOPT(CURLOPT_VERBOSE, 1L);
		SETOPT(CURLOPT_DEBUGFUNCTION, s3_debug_cb);
		SETOPT(CURLOPT_DEBUGDATA, x);
		SETOPT(CURLOPT_NOPROGRESS, 0L);
		SETOPT(CURLOPT_XFERINFOFUNCTION, s3_selftest_progress_cb);
		SETOPT(CURLOPT_XFERINFODATA, x);
	}
#undef SETOPT
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("could not set up an S3 request with this libcurl"),
				 errhint("buildlog needs libcurl 7.85 or later with HTTP and AWS Signature V4 support.")));
}

/* Append a header line to a curl list, or ERROR (the list stays valid). */
static struct curl_slist *
s3_append(struct curl_slist *list, const char *line)
{
	struct curl_slist *longer = curl_slist_append(list, line);

	if (longer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return longer;
}

/*
 * Send one request and fill x->result.  headers are the signed request
 * headers besides Host and x-amz-date.  Everything malloc'd on the way is
 * freed here, also when the producer, the sink or an interrupt raises.
 */
static void
s3_exchange(const S3Target *t, const char *method, const char *key,
			const char *const *headers, int nheaders, S3Exchange *x)
{
	S3Endpoint	ep;
	char	   *url;
	char	   *sigv4;
	struct curl_slist *volatile hlist = NULL;
	struct curl_slist *volatile connect_to = NULL;
	struct curl_slist *volatile resolve = NULL;
	CURLM	   *volatile multi = NULL;
	CURL	   *volatile easy = NULL;
	volatile bool added = false;

	s3_check_request(t, key, &ep);
	url = s3_object_url(t, &ep, key);
	buildlog_s3_counters.requests++;
	sigv4 = psprintf("aws:amz:%s:s3", t->region);
	s3_curl_init();
	x->result->outcome = S3_RETRYABLE;
	x->result->content_length = -1;
	x->result->range_first = x->result->range_last = x->result->range_total = -1;
	x->buf = palloc(S3_SLICE);

	PG_TRY();
	{
		CURLcode	code;
		int			i;

		if (x->upload)
		{
			buildlog_s3_producer_init(&x->producer, x->source, x->gzip);
			buildlog_s3_hash_init_sha256(&x->sent);	/* the check needs no MD5 */
		}
		for (i = 0; i < nheaders; i++)
			hlist = s3_append(hlist, headers[i]);
		if (x->connect_to)
		{
			connect_to = s3_append(NULL, x->connect_to);
			resolve = s3_append(NULL, x->resolve);
		}
		if ((easy = curl_easy_init()) == NULL || (multi = curl_multi_init()) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
		x->easy = easy;
		s3_set_options(easy, x, t, method, url, sigv4, hlist, connect_to, resolve);
		if (x->upload)
			s3_fill(x);			/* the first slice, before curl asks */
		if (curl_multi_add_handle(multi, easy) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not start a libcurl transfer")));
		added = true;
		code = s3_run(multi, x);
		s3_classify(x, code);
	}
	PG_FINALLY();
	{
		if (added)
			curl_multi_remove_handle(multi, easy);
		if (easy)
			curl_easy_cleanup(easy);
		if (multi)
			curl_multi_cleanup(multi);
		curl_slist_free_all(hlist);
		curl_slist_free_all(connect_to);
		curl_slist_free_all(resolve);
		buildlog_s3_producer_free(&x->producer);
		buildlog_s3_hash_free(&x->sent);
		buildlog_s3_consumer_free(&x->consumer);
		x->easy = NULL;
	}
	PG_END_TRY();
	pfree(x->buf);
	pfree(url);
	pfree(sigv4);
	pfree(ep.authority);
	pfree(ep.path);
}

/* A zeroed exchange reporting into result. */
static S3Exchange *
s3_new_exchange(S3Result *result)
{
	S3Exchange *x = palloc0(sizeof(S3Exchange));

	memset(result, 0, sizeof(*result));
	x->result = result;
	return x;
}

/* PUT a source's bytes with the given headers (s3_put and self-test). */
static void
s3_upload(const S3Target *t, const char *key, const S3Source *source,
		  bool gzip, const S3Digest *digest, const char *const *headers,
		  int nheaders, S3Exchange *x)
{
	x->upload = true;
	x->source = source;
	x->gzip = gzip;
	x->expect = digest;
	s3_exchange(t, "PUT", key, headers, nheaders, x);
}

/* Upload a source with the digest of its first pass. */
void
buildlog_s3_request_put(const S3Target *target, const char *key,
				const S3Source *source, bool gzip, const S3Digest *digest,
				S3Result *result)
{
	S3Exchange *x = s3_new_exchange(result);
	const char *headers[5];
	int			n = 0;

	headers[n++] = "Content-Type: " S3_CONTENT_TYPE;
	headers[n++] = psprintf("Content-MD5: %s", digest->md5);
	headers[n++] = psprintf("x-amz-content-sha256: %s", digest->sha256);
	headers[n++] = psprintf("x-amz-meta-sha256: %s", digest->sha256);
	if (gzip)
		headers[n++] = "Content-Encoding: gzip";
	s3_upload(target, key, source, gzip, digest, headers, n, x);
	pfree(x);
}

/* HEAD an object: its size, ETag, encoding and recorded SHA-256. */
void
buildlog_s3_request_head(const S3Target *target, const char *key, S3Result *result)
{
	S3Exchange *x = s3_new_exchange(result);
	const char *headers[] = {S3_EMPTY_PAYLOAD_HEADER};

	s3_exchange(target, "HEAD", key, headers, lengthof(headers), x);
	pfree(x);
}

/* GET an object into a sink, hashing the bytes as stored. */
void
buildlog_s3_request_get(const S3Target *target, const char *key, bool decode,
				const S3Sink *sink, S3Result *result)
{
	S3Exchange *x = s3_new_exchange(result);
	const char *headers[] = {S3_EMPTY_PAYLOAD_HEADER};

	x->download = true;
	x->decode = decode;
	x->sink = sink;
	s3_exchange(target, "GET", key, headers, lengthof(headers), x);
	pfree(x);
}

/* GET a byte range of an object as stored; the caller checks the range. */
void
buildlog_s3_request_get_range(const S3Target *target, const char *key, int64 first,
					  int64 last, const S3Sink *sink, S3Result *result)
{
	S3Exchange *x = s3_new_exchange(result);
	const char *headers[2];

	Assert(first >= 0 && last >= first);
	headers[0] = psprintf("Range: bytes=" INT64_FORMAT "-" INT64_FORMAT, first, last);
	headers[1] = S3_EMPTY_PAYLOAD_HEADER;
	x->download = true;
	x->decode = false;
	x->sink = sink;
	s3_exchange(target, "GET", key, headers, lengthof(headers), x);
	pfree(x);
}

/* DELETE an object. */
void
buildlog_s3_request_delete(const S3Target *target, const char *key, S3Result *result)
{
	S3Exchange *x = s3_new_exchange(result);
	const char *headers[] = {S3_EMPTY_PAYLOAD_HEADER};

	s3_exchange(target, "DELETE", key, headers, lengthof(headers), x);
	pfree(x);
}

/* ------------------------------------------------------------ reporting */

/* The outcome's name, as SQL functions show it. */
const char *
buildlog_s3_outcome_name(S3Outcome outcome)
{
	switch (outcome)
	{
		case S3_OK:
			return "ok";
		case S3_NOT_FOUND:
			return "not_found";
		case S3_RETRYABLE:
			return "retryable";
		case S3_PERMANENT:
			return "permanent";
		case S3_BAD_DATA:
			return "bad_data";
	}
	return "unknown";
}

/* ereport a failed request, with SQLSTATE and hint by outcome. */
void
buildlog_s3_report(int elevel, const char *action, const char *key,
				   const S3Result *result)
{
	int			sqlstate;
	const char *hint;

	switch (result->outcome)
	{
		case S3_NOT_FOUND:
			sqlstate = ERRCODE_UNDEFINED_OBJECT;
			hint = "The bucket has no object under this key.";
			break;
		case S3_PERMANENT:
			sqlstate = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
			hint = "Retrying will not help: check buildlog.s3_endpoint, s3_bucket, s3_region, s3_path_style and the credentials.";
			break;
		case S3_BAD_DATA:
			sqlstate = ERRCODE_DATA_CORRUPTED;
			hint = "The data changed while it was uploaded, or the stored object is damaged.";
			break;
		default:
			sqlstate = ERRCODE_CONNECTION_FAILURE;
			hint = "The S3 endpoint is unreachable, slow or failing; the request can be retried later.";
			break;
	}
	ereport(elevel,
			(errcode(sqlstate),
			 errmsg("could not %s S3 object \"%s\"", action, key),
			 errdetail("%s (%s).", result->error,
					   buildlog_s3_outcome_name(result->outcome)),
			 errhint("%s", hint)));
}

/* ---------------------------------------------------------- GUC checks */

/* Check hook of buildlog.s3_endpoint: empty, or http(s)://host[:port][/path]. */
bool
buildlog_s3_check_endpoint(char **newval, void **extra, GucSource source)
{
	const char *problem;

	if (*newval == NULL || **newval == '\0')
		return true;
	if ((problem = s3_parse_endpoint(*newval, NULL)) == NULL)
		return true;
	GUC_check_errdetail("%s", problem);
	return false;
}

/* Check hook of buildlog.s3_bucket. */
bool
buildlog_s3_check_bucket(char **newval, void **extra, GucSource source)
{
	const char *problem = s3_bucket_problem(*newval ? *newval : "", true);

	if (problem == NULL)
		return true;
	GUC_check_errdetail("%s", problem);
	return false;
}

/* Check hook of buildlog.s3_region. */
bool
buildlog_s3_check_region(char **newval, void **extra, GucSource source)
{
	const char *problem = s3_region_problem(*newval ? *newval : "");

	if (problem == NULL)
		return true;
	GUC_check_errdetail("%s", problem);
	return false;
}

/* Check hook of buildlog.s3_prefix: no leading '/', printable. */
bool
buildlog_s3_check_prefix(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL)
		return true;
	if (**newval == '/')
	{
		GUC_check_errdetail("The prefix must not start with '/'.");
		return false;
	}
	if (strlen(*newval) > 512)
	{
		GUC_check_errdetail("The prefix must have at most 512 bytes.");
		return false;
	}
	for (p = *newval; *p; p++)
		if ((unsigned char) *p < ' ' || *p == 0x7f)
		{
			GUC_check_errdetail("The prefix must not contain control characters.");
			return false;
		}
	return true;
}

/* ------------------------------------------------------------ self-test */

/* A listening socket on 127.0.0.1 at a free port; the kernel accepts. */
static int
s3_listen_local(int *port)
{
	struct sockaddr_in addr;
	socklen_t	len = sizeof(addr);
	int			fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 ||
		bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(fd, 4) != 0 ||
		getsockname(fd, (struct sockaddr *) &addr, &len) != 0)
	{
		int			save = errno;

		if (fd >= 0)
			close(fd);
		errno = save;
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not open a listening socket on 127.0.0.1: %m")));
	}
	*port = ntohs(addr.sin_port);
	return fd;
}

/*
 * AWS's published Signature V4 examples ("Examples of How to Derive a
 * Signing Key" in the S3 API reference, header-based auth), sent with
 * the example's key, date and headers to the example's virtual-host URL,
 * mapped to a listener on 127.0.0.1 that never answers.  Returns the
 * Authorization header libcurl sent.
 */
char *
buildlog_s3_selftest(S3SelfTest which)
{
	static const S3Target example = {
		.endpoint = "http://s3.amazonaws.com",
		.bucket = "examplebucket",
		.region = "us-east-1",
		.access_key = "AKIAIOSFODNN7EXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		.path_style = false,
		.timeout_s = 5,
		.request_timeout_ms = 10000
	};
	S3Result	result;
	S3Exchange *volatile x = s3_new_exchange(&result);
	int			port;
	int			fd = s3_listen_local(&port);
	char	   *authorization;

	x->connect_to = psprintf("examplebucket.s3.amazonaws.com:80:127.0.0.1:%d", port);
	x->resolve = "examplebucket.s3.amazonaws.com:80:127.0.0.1";
	PG_TRY();
	{
		if (which == S3_SELFTEST_GET_OBJECT)
		{
			const char *headers[] = {
				"Range: bytes=0-9",
				S3_EMPTY_PAYLOAD_HEADER,
				"x-amz-date: 20130524T000000Z"
			};

			x->download = true;
			s3_exchange(&example, "GET", "test.txt", headers, lengthof(headers), x);
		}
		else
		{
			S3Source	source;
			S3DatumSource body;
			S3Digest	digest;
			const char *headers[4];

			buildlog_s3_datum_source(&source, &body,
									 CStringGetTextDatum("Welcome to Amazon S3."));
			buildlog_s3_digest(&source, false, &digest);
			buildlog_s3_datum_source_rewind(&body);
			headers[0] = "Date: Fri, 24 May 2013 00:00:00 GMT";
			headers[1] = "x-amz-date: 20130524T000000Z";
			headers[2] = "x-amz-storage-class: REDUCED_REDUNDANCY";
			headers[3] = psprintf("x-amz-content-sha256: %s", digest.sha256);
			s3_upload(&example, "test$file.text", &source, false, &digest,
					  headers, lengthof(headers), x);
		}
	}
	PG_FINALLY();
	{
		close(fd);
	}
	PG_END_TRY();
	if (!x->captured)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the S3 signature self-test request was not sent"),
				 errdetail("%s", result.error)));
	authorization = pstrdup(x->authorization);
	pfree(x);
	return authorization;
}
