/*-------------------------------------------------------------------------
 * s3_payload.c
 *	  The bytes of S3 objects: checksums, streaming gzip and gunzip, the
 *	  digest pass of an upload and a source over a text or bytea datum.
 *
 * gzip output is deterministic (zlib level 1, no file name, mtime 0), so
 * the digest pass and the upload pass produce the same bytes from the same
 * source.  Nothing here is called from a libcurl callback.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "s3_payload.h"

static void buildlog_s3_hash_init(S3Hash *hash);

#define GZIP_WINDOW_BITS (15 + 16)	/* 32 KB window, gzip wrapper */

/* One EVP digest context, or an ERROR. */
static EVP_MD_CTX *
new_md(const EVP_MD *type)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, type, NULL) != 1)
	{
		EVP_MD_CTX_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize a checksum for S3")));
	}
	return ctx;
}

/* Start size, SHA-256 and MD5 of a stream (hash must be zeroed). */
static void
buildlog_s3_hash_init(S3Hash *hash)
{
	hash->size = 0;
	hash->sha256 = new_md(EVP_sha256());
	hash->md5 = new_md(EVP_md5());
}

/* Start size and SHA-256 only: checking a stream needs no MD5 (2.4x slower). */
void
buildlog_s3_hash_init_sha256(S3Hash *hash)
{
	hash->size = 0;
	hash->sha256 = new_md(EVP_sha256());
	hash->md5 = NULL;
}

/* Account for the next bytes of the stream. */
void
buildlog_s3_hash_update(S3Hash *hash, const char *data, Size len)
{
	if (len == 0)
		return;
	if (EVP_DigestUpdate(hash->sha256, data, len) != 1 ||
		(hash->md5 != NULL && EVP_DigestUpdate(hash->md5, data, len) != 1))
		elog(ERROR, "could not update an S3 checksum");
	hash->size += len;
}

/* The stream's digest: SHA-256 as hex, MD5 as base64 (Content-MD5). */
void
buildlog_s3_hash_final(S3Hash *hash, S3Digest *digest)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned char md5[EVP_MAX_MD_SIZE];
	unsigned int shalen = 0;
	unsigned int md5len = 0;
	unsigned int i;

	if (EVP_DigestFinal_ex(hash->sha256, sha, &shalen) != 1 || shalen != 32 ||
		(hash->md5 != NULL &&
		 (EVP_DigestFinal_ex(hash->md5, md5, &md5len) != 1 || md5len != 16)))
		elog(ERROR, "could not finish an S3 checksum");
	for (i = 0; i < shalen; i++)
	{
		digest->sha256[2 * i] = hex[sha[i] >> 4];
		digest->sha256[2 * i + 1] = hex[sha[i] & 15];
	}
	digest->sha256[S3_SHA256_HEX_LEN] = '\0';
	if (hash->md5 != NULL)
		EVP_EncodeBlock((unsigned char *) digest->md5, md5, md5len);
	else
		digest->md5[0] = '\0';
	digest->size = hash->size;
}

/* Free the OpenSSL state; safe on a zeroed or already freed hash. */
void
buildlog_s3_hash_free(S3Hash *hash)
{
	EVP_MD_CTX_free(hash->sha256);
	EVP_MD_CTX_free(hash->md5);
	hash->sha256 = NULL;
	hash->md5 = NULL;
}

/* Start producing the bytes to store (p must be zeroed). */
void
buildlog_s3_producer_init(S3Producer *p, const S3Source *source, bool gzip)
{
	p->source = *source;
	p->gzip = gzip;
	if (!gzip)
		return;
	p->in = palloc(S3_SLICE);
	/* level 1: twice the speed of 6 for 7 % larger logs (each log is deflated twice) */
	if (deflateInit2(&p->z, Z_BEST_SPEED, Z_DEFLATED,
					 GZIP_WINDOW_BITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize gzip compression")));
	p->zready = true;
}

/* Next slice from the source, insisting on its contract. */
static Size
source_read(S3Producer *p, char *buf, Size cap)
{
	Size		n = p->source.fill(p->source.arg, buf, cap);

	if (n > cap)
		elog(ERROR, "S3 source returned %zu bytes for a buffer of %zu", n, cap);
	return n;
}

/* Up to cap next bytes to store; 0 at the end. */
Size
buildlog_s3_producer_read(S3Producer *p, char *out, Size cap)
{
	Assert(cap <= S3_SLICE);
	if (p->done)
		return 0;
	if (!p->gzip)
	{
		Size		n = source_read(p, out, cap);

		p->done = (n == 0);
		return n;
	}
	for (;;)
	{
		int			rc;
		Size		made;

		if (p->z.avail_in == 0 && !p->source_done)
		{
			Size		n = source_read(p, p->in, S3_SLICE);

			p->source_done = (n == 0);
			p->z.next_in = (Bytef *) p->in;
			p->z.avail_in = (uInt) n;
		}
		p->z.next_out = (Bytef *) out;
		p->z.avail_out = (uInt) cap;
		rc = deflate(&p->z, p->source_done ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			p->done = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			elog(ERROR, "gzip compression failed: %s",
				 p->z.msg ? p->z.msg : "unknown error");
		made = cap - p->z.avail_out;
		if (made > 0 || p->done)
			return made;
	}
}

/* End a zlib stream (deflate or inflate) and free its slice buffer. */
static void
s3_zstream_free(z_stream *z, bool *zready, bool deflating, char **buf)
{
	if (*zready)
		(void) (deflating ? deflateEnd(z) : inflateEnd(z));
	*zready = false;
	if (*buf)
		pfree(*buf);
	*buf = NULL;
}

/* Free zlib's state and the input buffer; safe on a zeroed producer. */
void
buildlog_s3_producer_free(S3Producer *p)
{
	s3_zstream_free(&p->z, &p->zready, true, &p->in);
}

/* First pass of an upload: the size and checksums of the bytes to store. */
void
buildlog_s3_digest(const S3Source *source, bool gzip, S3Digest *digest)
{
	S3Producer	p;
	S3Hash		hash;
	char	   *buf = palloc(S3_SLICE);

	memset(&p, 0, sizeof(p));
	memset(&hash, 0, sizeof(hash));
	PG_TRY();
	{
		Size		n;

		buildlog_s3_producer_init(&p, source, gzip);
		buildlog_s3_hash_init(&hash);
		while ((n = buildlog_s3_producer_read(&p, buf, S3_SLICE)) > 0)
		{
			buildlog_s3_hash_update(&hash, buf, n);
			CHECK_FOR_INTERRUPTS();
		}
		buildlog_s3_hash_final(&hash, digest);
	}
	PG_FINALLY();
	{
		buildlog_s3_producer_free(&p);
		buildlog_s3_hash_free(&hash);
	}
	PG_END_TRY();
	pfree(buf);
}

/* Start consuming a download (c must be zeroed). */
void
buildlog_s3_consumer_init(S3Consumer *c, const S3Sink *sink, bool gunzip)
{
	c->sink = sink;
	c->gunzip = gunzip;
	buildlog_s3_hash_init(&c->hash);
	if (!gunzip)
		return;
	c->out = palloc(S3_SLICE);
	if (inflateInit2(&c->z, GZIP_WINDOW_BITS) != Z_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize gzip decompression")));
	c->zready = true;
}

/* Pass bytes on to the sink, counting them. */
static void
to_sink(S3Consumer *c, const char *data, Size len)
{
	if (len == 0)
		return;
	if (c->sink)
		c->sink->write(c->sink->arg, data, len);
	c->sink_bytes += len;
}

/* Bytes received as stored; false with error set when they are not gzip. */
bool
buildlog_s3_consumer_write(S3Consumer *c, const char *data, Size len,
						   char *error)
{
	buildlog_s3_hash_update(&c->hash, data, len);
	if (!c->gunzip)
	{
		to_sink(c, data, len);
		return true;
	}
	c->z.next_in = (Bytef *) data;
	c->z.avail_in = (uInt) len;
	for (;;)
	{
		int			rc;

		if (c->zdone)
		{
			if (c->z.avail_in == 0)
				return true;
			snprintf(error, S3_ERROR_LEN,
					 "The stored object has data after its gzip stream");
			return false;
		}
		c->z.next_out = (Bytef *) c->out;
		c->z.avail_out = S3_SLICE;
		rc = inflate(&c->z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			c->zdone = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
		{
			snprintf(error, S3_ERROR_LEN,
					 "The stored object is not valid gzip data (%s)",
					 c->z.msg ? c->z.msg : "zlib error");
			return false;
		}
		to_sink(c, c->out, S3_SLICE - c->z.avail_out);
		CHECK_FOR_INTERRUPTS();
		/* all input used and no more output pending */
		if (!c->zdone && c->z.avail_in == 0 && c->z.avail_out > 0)
			return true;
		if (rc == Z_BUF_ERROR && c->z.avail_out > 0)
			return true;
	}
}

/* The end of the download: its digest, and whether gzip data was complete. */
bool
buildlog_s3_consumer_finish(S3Consumer *c, S3Digest *received, char *error)
{
	buildlog_s3_hash_final(&c->hash, received);
	if (c->gunzip && !c->zdone)
	{
		snprintf(error, S3_ERROR_LEN,
				 "The stored object ends inside its gzip stream");
		return false;
	}
	return true;
}

/* Free OpenSSL's and zlib's state and the buffer; safe on a zeroed consumer. */
void
buildlog_s3_consumer_free(S3Consumer *c)
{
	buildlog_s3_hash_free(&c->hash);
	s3_zstream_free(&c->z, &c->zready, false, &c->out);
}

/* fill() of a datum source: a slice, detoasted in a scratch context. */
static Size
datum_fill(void *arg, char *buf, Size cap)
{
	S3DatumSource *s = (S3DatumSource *) arg;
	Size		n = (Size) Min((int64) cap, s->size - s->offset);

	if (n == 0)
		return 0;
	if (s->flat)
		memcpy(buf, s->flat + s->offset, n);
	else
	{
		MemoryContext old = MemoryContextSwitchTo(s->scratch);
		struct varlena *slice;

		slice = detoast_attr_slice((struct varlena *) DatumGetPointer(s->value),
								   s->offset, (int32) n);
		if (VARSIZE_ANY_EXHDR(slice) != n)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored log content is shorter than its header says"),
					 errdetail("Reading %zu bytes at offset %zu returned %zu.",
							   (size_t) n, (size_t) s->offset,
							   (size_t) VARSIZE_ANY_EXHDR(slice))));
		memcpy(buf, VARDATA_ANY(slice), n);
		MemoryContextSwitchTo(old);
		MemoryContextReset(s->scratch);
	}
	s->offset += n;
	return n;
}

/*
 * A source over a text or bytea datum.  A value stored out of line without
 * compression (logs.content is STORAGE EXTERNAL) is read slice by slice,
 * so memory stays bounded; any other value is detoasted once, here.  The
 * source can be read again after buildlog_s3_datum_source_rewind().
 */
void
buildlog_s3_datum_source(S3Source *source, S3DatumSource *state, Datum value)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);

	memset(state, 0, sizeof(*state));
	state->value = value;
	if (VARATT_IS_EXTERNAL_ONDISK(v))
	{
		struct varatt_external ext;

		VARATT_EXTERNAL_GET_POINTER(ext, v);
		if (!VARATT_EXTERNAL_IS_COMPRESSED(ext))
		{
			state->size = toast_raw_datum_size(value) - VARHDRSZ;
			state->scratch = AllocSetContextCreate(CurrentMemoryContext,
												   "buildlog S3 slice",
												   ALLOCSET_DEFAULT_SIZES);
		}
	}
	if (state->scratch == NULL)
	{
		struct varlena *flat = pg_detoast_datum_packed(v);

		state->flat = VARDATA_ANY(flat);
		state->size = VARSIZE_ANY_EXHDR(flat);
	}
	source->fill = datum_fill;
	source->arg = state;
	source->stable = true;		/* a datum never changes under the caller */
}

/* Read a datum source again from its first byte. */
void
buildlog_s3_datum_source_rewind(S3DatumSource *state)
{
	state->offset = 0;
}
