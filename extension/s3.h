/*-------------------------------------------------------------------------
 * s3.h
 *	  A small S3 client (libcurl, AWS Signature V4) for the archive worker
 *	  and the SQL functions that read archived logs: PUT, HEAD and GET of
 *	  one object at a time, streamed.  The transfer engine is s3.c, the
 *	  buildlog.s3_* settings s3_settings.c, the object bytes (checksums,
 *	  gzip) s3_payload.c and the Signature V4 self-test s3_selftest.c.
 *
 * Memory stays bounded whatever the object size: an upload pulls its bytes
 * from an S3Source in slices, a download pushes them to an S3Sink in
 * slices.  Sources and sinks are called outside libcurl's callbacks (the
 * transfer is paused meanwhile), so they may use SPI, detoast and ereport;
 * the client frees its curl handles when they do.  libcurl is initialised
 * lazily by the first call in a process (never in _PG_init) and a curl
 * handle lives only for one call, in process-local memory.  The client
 * polls for interrupts at least every 100 ms, so query cancel, SIGTERM and
 * barriers are served during long transfers.
 *
 * Failures of the exchange are returned, not raised: S3Result.outcome says
 * whether a retry may help and S3Result.error is a short text that never
 * holds a credential.  The calls raise an ERROR only for a target or key
 * that cannot be used, for what a source or sink raises, and on interrupts.
 *
 * An upload takes two passes over its source, because Signature V4 signs
 * the payload's SHA-256 before the first byte is sent:
 *
 *		buildlog_s3_digest(&source, gzip, &digest);
 *		... rewind the source ...
 *		buildlog_s3_request_put(&target, key, &source, gzip, &digest, &result);
 *
 * The put streams exactly the bytes the digest pass saw (gzip output is
 * deterministic); it hashes them again while sending and aborts the
 * request before its last byte if the source changed in between, so a
 * stored object always matches its recorded size and SHA-256.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_S3_H
#define BUILDLOG_S3_H

#include "postgres.h"

#include "utils/guc.h"

#define S3_SHA256_HEX_LEN 64
#define S3_MD5_BASE64_LEN 24
#define S3_ERROR_LEN 256
#define S3_HEADER_LEN 128

/* Where objects live; the caller owns the strings (see buildlog_s3_target). */
typedef struct S3Target
{
	const char *endpoint;		/* http(s)://host[:port][/path] */
	const char *bucket;
	const char *region;			/* signing region, e.g. us-east-1 */
	const char *access_key;
	const char *secret_key;
	bool		path_style;		/* endpoint/bucket/key, else bucket.host/key */
	int			timeout_s;		/* connect timeout and longest stall */
	int			request_timeout_ms; /* longest total time of one request */
	const char *owner;			/* this deployment's id: uploads carry it as
								 * x-amz-meta-buildlog-owner (NULL: none) */
} S3Target;

/*
 * The bytes of an upload.  fill() copies the next bytes (at most cap) to
 * buf and returns how many; 0 means the end.  It may call PostgreSQL.
 */
typedef Size (*S3FillFn) (void *arg, char *buf, Size cap);

typedef struct S3Source
{
	S3FillFn	fill;
	void	   *arg;
	bool		stable;			/* the bytes cannot change between the passes
								 * (a value read under one snapshot): the put
								 * checks sizes only, without hashing again */
} S3Source;

/* Where a download goes, slice by slice; may call PostgreSQL. */
typedef void (*S3SinkFn) (void *arg, const char *data, Size len);

typedef struct S3Sink
{
	S3SinkFn	write;
	void	   *arg;
} S3Sink;

/* Size and checksums of the bytes stored (after gzip, when gzipped). */
typedef struct S3Digest
{
	uint64		size;
	char		sha256[S3_SHA256_HEX_LEN + 1];	/* lowercase hex */
	char		md5[S3_MD5_BASE64_LEN + 1]; /* base64, as in Content-MD5 */
} S3Digest;

/* What the caller should do about a request's result. */
typedef enum S3Outcome
{
	S3_OK,						/* 2xx */
	S3_NOT_FOUND,				/* 404 for the object (not NoSuchBucket) */
	S3_RETRYABLE,				/* no connection, timeout, 5xx, throttled */
	S3_PERMANENT,				/* other 3xx/4xx: credentials, bucket,
								 * region, endpoint; retrying will not help */
	S3_BAD_DATA					/* local: the source changed between the
								 * passes, or stored gzip data is damaged */
} S3Outcome;

typedef struct S3Result
{
	S3Outcome	outcome;
	long		status;			/* HTTP status, 0 without a response */
	char		error[S3_ERROR_LEN];	/* "" when S3_OK; never a secret */
	/* from the response headers */
	char		etag[S3_HEADER_LEN];	/* without its quotes */
	int64		content_length; /* HEAD, GET: -1 when absent */
	char		content_type[S3_HEADER_LEN];
	char		content_encoding[S3_HEADER_LEN];
	char		meta_sha256[S3_SHA256_HEX_LEN + 1];	/* x-amz-meta-sha256 */
	char		meta_owner[S3_HEADER_LEN];	/* x-amz-meta-buildlog-owner */
	/* GET: the bytes received as stored, and how many reached the sink */
	S3Digest	received;
	uint64		sink_bytes;
	/* ranged GET: Content-Range "bytes first-last/total", -1 when absent */
	int64		range_first;
	int64		range_last;
	int64		range_total;
} S3Result;

/* What this process's S3 client did, for tests and operators. */
typedef struct S3ClientCounters
{
	uint64		requests;
	uint64		received_bytes; /* body bytes of 2xx GET responses */
} S3ClientCounters;

extern S3ClientCounters buildlog_s3_counters;

/* Fill a target from the buildlog.s3_* settings; ERROR when incomplete. */
extern void buildlog_s3_target(S3Target *target);

/* The key of a job's archived log: <prefix>jobs/<job_id>/log.txt (palloc'd). */
extern char *buildlog_s3_key_for_job(const char *prefix, int64 job_id);

/* First pass of an upload: size and checksums of the bytes to store. */
extern void buildlog_s3_digest(const S3Source *source, bool gzip,
							   S3Digest *digest);

/*
 * Upload the source (gzip-compressed when gzip) with the digest of the
 * first pass.  Sends Content-Type text/plain; charset=utf-8, Content-MD5,
 * x-amz-content-sha256, x-amz-meta-sha256 (the SHA-256 again, so HEAD can
 * prove it) and Content-Encoding: gzip when gzip.  result->etag is set.
 */
extern void buildlog_s3_request_put(const S3Target *target, const char *key,
							const S3Source *source, bool gzip,
							const S3Digest *digest, S3Result *result);

/* HEAD: content_length, etag, content_type, content_encoding, meta_sha256. */
extern void buildlog_s3_request_head(const S3Target *target, const char *key,
							 S3Result *result);

/*
 * GET into sink (NULL: only hash and count).  result->received is the size
 * and checksums of the bytes as stored; with decode, an object stored with
 * Content-Encoding: gzip is decompressed before the sink (and must be
 * complete, valid gzip data).  The sink sees only 2xx bodies.
 */
extern void buildlog_s3_request_get(const S3Target *target, const char *key,
							bool decode, const S3Sink *sink,
							S3Result *result);

/*
 * GET bytes first..last (inclusive) of an object, as stored (no gunzip),
 * into sink.  The caller must check the result: status 206, range_first,
 * range_last and range_total, received.size.  The sink sees only 2xx bodies.
 */
extern void buildlog_s3_request_get_range(const S3Target *target, const char *key,
								  int64 first, int64 last, const S3Sink *sink,
								  S3Result *result);

/* DELETE an object (S3 answers 204 whether or not it existed). */
extern void buildlog_s3_request_delete(const S3Target *target, const char *key,
							   S3Result *result);

/*
 * A source over a text or bytea datum.  A value stored out of line without
 * compression (logs.content is STORAGE EXTERNAL) is read slice by slice
 * (needs an active snapshot), so memory stays bounded; any other value is
 * detoasted once, at set-up.  Rewind it between the digest and the put.
 * Its memory (a scratch context for slices) lives in the memory context
 * current at set-up.
 */
typedef struct S3DatumSource
{
	Datum		value;
	int64		size;
	int64		offset;
	const char *flat;			/* the bytes, when not read by slices */
	MemoryContext scratch;		/* one slice at a time, when read by slices */
} S3DatumSource;

extern void buildlog_s3_datum_source(S3Source *source, S3DatumSource *state,
									 Datum value);
extern void buildlog_s3_datum_source_rewind(S3DatumSource *state);

/* "ok", "not_found", "retryable", "permanent", "bad_data". */
extern const char *buildlog_s3_outcome_name(S3Outcome outcome);

/*
 * ereport a failed request at elevel: errmsg "could not <action> S3 object
 * "<key>"" (action is a verb: "upload", "read", "verify"), errdetail the
 * error text and outcome, SQLSTATE and hint by outcome: not_found 42704,
 * retryable 08006, permanent 38000, bad_data XX001.
 */
extern void buildlog_s3_report(int elevel, const char *action, const char *key,
							   const S3Result *result);

/* Check hooks of buildlog.s3_endpoint, s3_bucket, s3_region, s3_prefix. */
extern bool buildlog_s3_check_endpoint(char **newval, void **extra,
									   GucSource source);
extern bool buildlog_s3_check_bucket(char **newval, void **extra,
									 GucSource source);
extern bool buildlog_s3_check_region(char **newval, void **extra,
									 GucSource source);
extern bool buildlog_s3_check_prefix(char **newval, void **extra,
									 GucSource source);

/* AWS's published Signature V4 examples, reproduced by the request path. */
typedef enum S3SelfTest
{
	S3_SELFTEST_GET_OBJECT,		/* "GET Object" with Range: bytes=0-9 */
	S3_SELFTEST_PUT_OBJECT		/* "PUT Object" of "Welcome to Amazon S3." */
} S3SelfTest;

/*
 * Send the example request to a listener on 127.0.0.1 (the example's host
 * is mapped there; nothing leaves the machine) and return the Authorization
 * header libcurl sent (palloc'd).
 */
extern char *buildlog_s3_selftest(S3SelfTest which);

#endif							/* BUILDLOG_S3_H */
