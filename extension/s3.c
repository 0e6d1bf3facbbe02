/*-------------------------------------------------------------------------
 * s3.c
 *	  The S3 client's transfer engine: PUT, HEAD, GET and DELETE of one
 *	  object with libcurl's multi interface and its AWS Signature V4
 *	  signing (CURLOPT_AWS_SIGV4), and what a failure means for the caller.
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
 * header; buildlog.s3_signature_selftest() (s3_selftest.c) proves both
 * against AWS's published examples.  Credentials go only to
 * CURLOPT_USERNAME and CURLOPT_PASSWORD: never into a URL, an error text
 * or a log line.  The target and key are checked first (s3_settings.c);
 * the bytes are hashed, gzipped and gunzipped by s3_payload.c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "s3_internal.h"
#include "s3_payload.h"

#define S3_POLL_MS 100			/* longest wait between interrupt checks */
#define S3_ERRBODY_LEN 2048		/* kept of an error response's XML */
#define S3_CONTENT_TYPE "text/plain; charset=utf-8"

/* One request and its response, shared by the loop and curl's callbacks. */
typedef struct S3Exchange
{
	CURL	   *easy;
	const S3Request *req;
	S3Result   *result;

	/* upload: req->source's bytes, checked against req->digest */
	bool		upload;
	S3Producer	producer;
	S3Hash		sent;
	bool		body_done;
	bool		need_fill;

	/* download (GET): the bytes go through the consumer to req->sink */
	bool		download;
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

/* ----------------------------------------------------------------- URLs */

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
		r->meta_sha256[0] = r->meta_owner[0] = '\0';
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
	else if (s3_header_value(line, n, "x-amz-meta-buildlog-owner", value, sizeof(value)))
		strlcpy(r->meta_owner, value, sizeof(r->meta_owner));
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

/* ------------------------------------------------------------- the loop */

/* Refill the upload buffer from the producer, checking it against the digest. */
static void
s3_fill(S3Exchange *x)
{
	const S3Digest *expect = x->req->digest;
	char		error[S3_ERROR_LEN];
	Size		n;

	x->buf_pos = x->buf_len = 0;
	if (x->failed || x->body_done)
		return;
	n = buildlog_s3_producer_read(&x->producer, x->buf, S3_SLICE);
	if (x->req->source->stable)
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
		if (!x->req->source->stable && strcmp(sent.sha256, expect->sha256) != 0)
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
		buildlog_s3_consumer_init(&x->consumer, x->req->sink,
								  x->req->decode &&
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

/* Set the options every request shares, the method's and the caller's. */
static void
s3_set_options(CURL *easy, S3Exchange *x, const S3Target *t, const char *url,
			   const char *sigv4, struct curl_slist *headers)
{
	const char *method = x->req->method;
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
	if (x->upload)
	{
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, s3_read_cb);
		SETOPT(CURLOPT_READDATA, x);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t) x->req->digest->size);
	}
	else if (strcmp(method, "HEAD") == 0)
		SETOPT(CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "DELETE") == 0)
		SETOPT(CURLOPT_CUSTOMREQUEST, "DELETE");
#undef SETOPT
	if (ok && x->req->options)
		ok = x->req->options(easy, x->req->options_arg);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("could not set up an S3 request with this libcurl"),
				 errhint("buildlog needs libcurl 7.85 or later with HTTP and AWS Signature V4 support.")));
}

/* Append a line to a curl list, or ERROR (the list stays valid). */
struct curl_slist *
buildlog_s3_list_append(struct curl_slist *list, const char *line)
{
	struct curl_slist *longer = curl_slist_append(list, line);

	if (longer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return longer;
}

/* A zeroed exchange of request, reporting into result (zeroed too). */
static S3Exchange *
s3_new_exchange(const S3Request *req, S3Result *result)
{
	S3Exchange *x = palloc0(sizeof(S3Exchange));

	memset(result, 0, sizeof(*result));
	result->outcome = S3_RETRYABLE;
	result->content_length = -1;
	result->range_first = result->range_last = result->range_total = -1;
	x->req = req;
	x->result = result;
	x->upload = (req->source != NULL);
	x->download = (strcmp(req->method, "GET") == 0);
	x->buf = palloc(S3_SLICE);
	return x;
}

/*
 * Send one request and fill result.  Everything malloc'd on the way is
 * freed here, also when the producer, the sink or an interrupt raises.
 */
void
buildlog_s3_exchange(const S3Target *t, const char *key, const S3Request *req,
					 S3Result *result)
{
	S3Endpoint	ep;
	char	   *url;
	char	   *sigv4;
	S3Exchange *x;
	struct curl_slist *volatile hlist = NULL;
	CURLM	   *volatile multi = NULL;
	CURL	   *volatile easy = NULL;
	volatile bool added = false;

	Assert(req->source == NULL || strcmp(req->method, "PUT") == 0);
	buildlog_s3_check_request(t, key, &ep);
	url = s3_object_url(t, &ep, key);
	buildlog_s3_counters.requests++;
	sigv4 = psprintf("aws:amz:%s:s3", t->region);
	s3_curl_init();
	x = s3_new_exchange(req, result);

	PG_TRY();
	{
		CURLcode	code;
		int			i;

		if (x->upload)
		{
			buildlog_s3_producer_init(&x->producer, req->source, req->gzip);
			buildlog_s3_hash_init_sha256(&x->sent);	/* the check needs no MD5 */
		}
		for (i = 0; i < req->nheaders; i++)
			hlist = buildlog_s3_list_append(hlist, req->headers[i]);
		if ((easy = curl_easy_init()) == NULL || (multi = curl_multi_init()) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
		x->easy = easy;
		s3_set_options(easy, x, t, url, sigv4, hlist);
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
		buildlog_s3_producer_free(&x->producer);
		buildlog_s3_hash_free(&x->sent);
		buildlog_s3_consumer_free(&x->consumer);
		x->easy = NULL;
	}
	PG_END_TRY();
	pfree(x->buf);
	pfree(x);
	pfree(url);
	pfree(sigv4);
	pfree(ep.authority);
	pfree(ep.path);
}

/* Upload a source with the digest of its first pass. */
void
buildlog_s3_request_put(const S3Target *target, const char *key,
						const S3Source *source, bool gzip,
						const S3Digest *digest, S3Result *result)
{
	const char *headers[6];
	S3Request	req = {.method = "PUT", .headers = headers,
	.source = source, .gzip = gzip, .digest = digest};

	headers[req.nheaders++] = "Content-Type: " S3_CONTENT_TYPE;
	headers[req.nheaders++] = psprintf("Content-MD5: %s", digest->md5);
	headers[req.nheaders++] = psprintf("x-amz-content-sha256: %s", digest->sha256);
	headers[req.nheaders++] = psprintf("x-amz-meta-sha256: %s", digest->sha256);
	if (gzip)
		headers[req.nheaders++] = "Content-Encoding: gzip";
	if (target->owner != NULL)
		headers[req.nheaders++] = psprintf("x-amz-meta-buildlog-owner: %s", target->owner);
	buildlog_s3_exchange(target, key, &req, result);
}

/* Send a request without a body: HEAD, DELETE, or GET (of range) to sink. */
static void
s3_request_bodiless(const S3Target *target, const char *method,
					const char *key, const char *range, bool decode,
					const S3Sink *sink, S3Result *result)
{
	const char *headers[2] = {S3_EMPTY_PAYLOAD_HEADER, range};
	S3Request	req = {.method = method, .headers = headers,
	.nheaders = range ? 2 : 1, .decode = decode, .sink = sink};

	buildlog_s3_exchange(target, key, &req, result);
}

/* HEAD an object: its size, ETag, encoding and recorded SHA-256. */
void
buildlog_s3_request_head(const S3Target *target, const char *key,
						 S3Result *result)
{
	s3_request_bodiless(target, "HEAD", key, NULL, false, NULL, result);
}

/* GET an object into a sink, hashing the bytes as stored. */
void
buildlog_s3_request_get(const S3Target *target, const char *key, bool decode,
						const S3Sink *sink, S3Result *result)
{
	s3_request_bodiless(target, "GET", key, NULL, decode, sink, result);
}

/* GET a byte range of an object as stored; the caller checks the range. */
void
buildlog_s3_request_get_range(const S3Target *target, const char *key,
							  int64 first, int64 last, const S3Sink *sink,
							  S3Result *result)
{
	char	   *range;

	Assert(first >= 0 && last >= first);
	range = psprintf("Range: bytes=" INT64_FORMAT "-" INT64_FORMAT, first, last);
	s3_request_bodiless(target, "GET", key, range, false, sink, result);
	pfree(range);
}

/* DELETE an object. */
void
buildlog_s3_request_delete(const S3Target *target, const char *key,
						   S3Result *result)
{
	s3_request_bodiless(target, "DELETE", key, NULL, false, NULL, result);
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
