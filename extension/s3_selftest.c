/*-------------------------------------------------------------------------
 * s3_selftest.c
 *	  The Signature V4 self-test behind buildlog.s3_signature_selftest():
 *	  AWS's published example requests, sent through the client's own
 *	  request path, and the Authorization header libcurl signed them with.
 *
 * libcurl computes the signature (CURLOPT_AWS_SIGV4); the client only
 * chooses the signed headers and the payload hash.  Comparing what it
 * sends for AWS's examples with AWS's published signatures proves that
 * choice on this libcurl.  The example's host is mapped to a listener on
 * 127.0.0.1 that never answers, so nothing leaves the machine: curl's
 * debug callback keeps the Authorization header it sent and a progress
 * callback ends the transfer then.  Only here is CURLOPT_VERBOSE on; the
 * key it exposes to the debug callback is AWS's example key.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "utils/builtins.h"

#include "s3_internal.h"

/* Where the example request goes, and what curl sent. */
typedef struct S3Capture
{
	struct curl_slist *connect_to;	/* the example's host to 127.0.0.1 */
	struct curl_slist *resolve;
	bool		captured;
	char		authorization[512];
} S3Capture;

/* CURLOPT_DEBUGFUNCTION: keep the Authorization header sent. */
static int
s3_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
	static const char name[] = "\nAuthorization: ";
	S3Capture  *c = (S3Capture *) arg;
	size_t		i;

	if (type != CURLINFO_HEADER_OUT || c->captured)
		return 0;
	for (i = 0; i + sizeof(name) - 1 <= size; i++)
	{
		if (memcmp(data + i, name, sizeof(name) - 1) == 0)
		{
			const char *v = data + i + sizeof(name) - 1;
			size_t		len = 0;

			while (v + len < data + size && v[len] != '\r' && v[len] != '\n' &&
				   len < sizeof(c->authorization) - 1)
				len++;
			memcpy(c->authorization, v, len);
			c->authorization[len] = '\0';
			c->captured = true;
			break;
		}
	}
	return 0;
}

/* CURLOPT_XFERINFOFUNCTION: stop once the request is out. */
static int
s3_progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	return ((S3Capture *) arg)->captured ? 1 : 0;
}

/* S3Request.options: to 127.0.0.1, no proxy, capture the headers sent. */
static bool
s3_capture_options(CURL *easy, void *arg)
{
	S3Capture  *c = (S3Capture *) arg;
	bool		ok = true;

#define SETOPT(opt, val) (ok = ok && curl_easy_setopt(easy, opt, val) == CURLE_OK)
	SETOPT(CURLOPT_CONNECT_TO, c->connect_to);
	SETOPT(CURLOPT_RESOLVE, c->resolve);
	SETOPT(CURLOPT_PROXY, "");
	SETOPT(CURLOPT_VERBOSE, 1L);
	SETOPT(CURLOPT_DEBUGFUNCTION, s3_debug_cb);
	SETOPT(CURLOPT_DEBUGDATA, c);
	SETOPT(CURLOPT_NOPROGRESS, 0L);
	SETOPT(CURLOPT_XFERINFOFUNCTION, s3_progress_cb);
	SETOPT(CURLOPT_XFERINFODATA, c);
#undef SETOPT
	return ok;
}

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

/* Send AWS's example request "which" with the capture's options. */
static void
s3_send_example(S3SelfTest which, S3Capture *capture, S3Result *result)
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
	S3Request	req = {.options = s3_capture_options, .options_arg = capture};

	if (which == S3_SELFTEST_GET_OBJECT)
	{
		static const char *const headers[] = {
			"Range: bytes=0-9",
			S3_EMPTY_PAYLOAD_HEADER,
			"x-amz-date: 20130524T000000Z"
		};

		req.method = "GET";
		req.headers = headers;
		req.nheaders = lengthof(headers);
		buildlog_s3_exchange(&example, "test.txt", &req, result);
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
		req.method = "PUT";
		req.headers = headers;
		req.nheaders = lengthof(headers);
		req.source = &source;
		req.digest = &digest;
		buildlog_s3_exchange(&example, "test$file.text", &req, result);
	}
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
	S3Capture  *volatile capture = palloc0(sizeof(S3Capture));
	S3Result	result;
	int			port;
	int			fd = s3_listen_local(&port);
	char	   *authorization;

	PG_TRY();
	{
		capture->connect_to =
			buildlog_s3_list_append(NULL, psprintf("examplebucket.s3.amazonaws.com:80:127.0.0.1:%d",
								 port));
		capture->resolve =
			buildlog_s3_list_append(NULL, "examplebucket.s3.amazonaws.com:80:127.0.0.1");
		s3_send_example(which, capture, &result);
	}
	PG_FINALLY();
	{
		close(fd);
		curl_slist_free_all(capture->connect_to);
		curl_slist_free_all(capture->resolve);
	}
	PG_END_TRY();
	if (!capture->captured)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the S3 signature self-test request was not sent"),
				 errdetail("%s", result.error)));
	authorization = pstrdup(capture->authorization);
	pfree(capture);
	return authorization;
}
