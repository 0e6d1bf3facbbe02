/*-------------------------------------------------------------------------
 * s3_payload.h
 *	  The bytes of S3 objects, for s3.c: checksums (OpenSSL EVP),
 *	  streaming gzip on the way up and gunzip on the way down (zlib).
 *
 * Everything here runs outside libcurl's callbacks and may ereport; the
 * OpenSSL and zlib state is malloc'd by those libraries, so every init has
 * a free that the caller runs in PG_FINALLY.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_S3_PAYLOAD_H
#define BUILDLOG_S3_PAYLOAD_H

#include "postgres.h"

#include <openssl/evp.h>
#include <zlib.h>

#include "s3.h"

/* Bytes moved per slice: source reads, curl buffers, (de)compression. */
#define S3_SLICE (128 * 1024)

/* Running size, SHA-256 and MD5 of a byte stream. */
typedef struct S3Hash
{
	EVP_MD_CTX *sha256;
	EVP_MD_CTX *md5;
	uint64		size;
} S3Hash;

extern void buildlog_s3_hash_init_sha256(S3Hash *hash);
extern void buildlog_s3_hash_update(S3Hash *hash, const char *data, Size len);
extern void buildlog_s3_hash_final(S3Hash *hash, S3Digest *digest);
extern void buildlog_s3_hash_free(S3Hash *hash);

/* The bytes to store: a source, deflated to gzip when asked. */
typedef struct S3Producer
{
	S3Source	source;
	bool		gzip;
	bool		source_done;
	bool		done;
	bool		zready;
	z_stream	z;
	char	   *in;				/* S3_SLICE bytes read from the source */
} S3Producer;

extern void buildlog_s3_producer_init(S3Producer *p, const S3Source *source,
									  bool gzip);
extern Size buildlog_s3_producer_read(S3Producer *p, char *out, Size cap);
extern void buildlog_s3_producer_free(S3Producer *p);

/* The bytes received: hashed as stored, inflated when gzip, to a sink. */
typedef struct S3Consumer
{
	const S3Sink *sink;			/* NULL: hash and count only */
	bool		gunzip;
	bool		zready;
	bool		zdone;
	z_stream	z;
	char	   *out;			/* S3_SLICE bytes of inflated data */
	S3Hash		hash;
	uint64		sink_bytes;
} S3Consumer;

extern void buildlog_s3_consumer_init(S3Consumer *c, const S3Sink *sink,
									  bool gunzip);
extern bool buildlog_s3_consumer_write(S3Consumer *c, const char *data,
									   Size len, char *error);
extern bool buildlog_s3_consumer_finish(S3Consumer *c, S3Digest *received,
										char *error);
extern void buildlog_s3_consumer_free(S3Consumer *c);

#endif							/* BUILDLOG_S3_PAYLOAD_H */
