/*-------------------------------------------------------------------------
 * s3_internal.h
 *	  What the pieces of the S3 client share, for s3*.c only: the parts of
 *	  an endpoint URL and the checks of a target (s3_settings.c), and one
 *	  signed exchange with S3 (s3.c), which the SigV4 self-test
 *	  (s3_selftest.c) drives with AWS's example requests.
 *
 * Callers outside the client use s3.h.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_S3_INTERNAL_H
#define BUILDLOG_S3_INTERNAL_H

#include "postgres.h"

#include <curl/curl.h>

#include "s3.h"

/* The SHA-256 of no bytes: the payload hash of a request without a body. */
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

/*
 * Split an endpoint URL into ep (palloc'd parts; ep may be NULL to check
 * only); returns what is wrong with it, or NULL.
 */
extern const char *buildlog_s3_parse_endpoint(const char *endpoint,
											  S3Endpoint *ep);

/* ERROR unless the target and key can be used; fills ep. */
extern void buildlog_s3_check_request(const S3Target *target, const char *key,
									  S3Endpoint *ep);

/* More curl options for one request (self-test); false when one failed. */
typedef bool (*S3OptionsFn) (CURL *easy, void *arg);

/* One request to send: its method, signed headers and body's way. */
typedef struct S3Request
{
	const char *method;			/* "PUT", "GET", "HEAD" or "DELETE" */
	const char *const *headers; /* signed, besides Host and x-amz-date */
	int			nheaders;
	/* PUT: the source's bytes (gzipped when gzip), checked against digest */
	const S3Source *source;
	bool		gzip;
	const S3Digest *digest;
	/* GET: the body goes to sink (NULL: hashed and counted only) */
	bool		decode;
	const S3Sink *sink;
	/* extra curl options and their argument, or NULL */
	S3OptionsFn options;
	void	   *options_arg;
} S3Request;

/* Append a line to a curl list, or ERROR (the list stays valid). */
extern struct curl_slist *buildlog_s3_list_append(struct curl_slist *list,
												  const char *line);

/*
 * Send one request and fill result (zeroed first).  Everything libcurl,
 * OpenSSL and zlib malloc'd on the way is freed, also when a source, a
 * sink or an interrupt raises.
 */
extern void buildlog_s3_exchange(const S3Target *target, const char *key,
								 const S3Request *request, S3Result *result);

#endif							/* BUILDLOG_S3_INTERNAL_H */
