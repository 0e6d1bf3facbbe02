/*-------------------------------------------------------------------------
 * message.c
 *	  travis-worker wire format: {"id", "log", "number", "final",
 *	  "encoding", "uuid", "meta", ...}.
 *
 * id: integer > 0.  number: integer >= 0 or "last" (2147483647).  log: a
 * string (missing means empty), base64 when "encoding" is "base64".  final:
 * boolean (missing or null means false).  uuid, meta and unknown fields are
 * ignored.  A body with invalid UTF-8 is cleaned before it is parsed, and
 * the content after decoding is cleaned again, so invalid bytes never cost
 * a part; they become U+FFFD and are counted.
 *
 * jansson allocates through palloc_extended(..., MCXT_ALLOC_NO_OOM) in the
 * caller's memory context: out of memory is a NULL jansson handles (no
 * longjmp through it), and nothing leaks if an ERROR follows.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "common/base64.h"

#include "../extension/ingest.h"
#include "../extension/utf8.h"
#include "message.h"
#include "scan.h"

/* jansson's allocator: memory context, NULL instead of an ERROR. */
static void *
json_palloc(size_t size)
{
	return palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

/* jansson's deallocator (it may pass NULL). */
static void
json_pfree(void *ptr)
{
	if (ptr != NULL)
		pfree(ptr);
}

/* Mark the part rejected with a formatted reason. */
static void pg_attribute_printf(2, 3)
reject(ParsedPart *out, const char *fmt,...)
{
	va_list		ap;

	out->ok = false;
	va_start(ap, fmt);
	vsnprintf(out->reason, PART_REASON_LEN, fmt, ap);
	va_end(ap);
}

/* Reasons worded once for both parsers. */
#define REASON_ID		"\"id\" is not a positive integer"
#define REASON_NUMBER	"\"number\" is neither an integer from 0 to %d nor \"last\""
#define REASON_SIZE		"part of %zu bytes exceeds buildlog.max_part_bytes (%d)"
#define REASON_B64_SIZE	"base64 part of %zu characters exceeds buildlog.max_part_bytes (%d) when decoded"

/* Read "id"; false (with reason) unless it is an integer > 0. */
static bool
read_job_id(json_t *root, ParsedPart *out)
{
	json_t	   *id = json_object_get(root, "id");

	if (id == NULL)
		return reject(out, "missing \"id\""), false;
	if (!json_is_integer(id) || json_integer_value(id) <= 0)
		return reject(out, REASON_ID), false;
	out->job_id = (int64) json_integer_value(id);
	return true;
}

/* Read "number": an integer 0..2147483647 or the string "last". */
static bool
read_number(json_t *root, ParsedPart *out)
{
	json_t	   *number = json_object_get(root, "number");

	if (number == NULL)
		return reject(out, "missing \"number\""), false;
	if (json_is_string(number) && strcmp(json_string_value(number), "last") == 0)
	{
		out->number = BUILDLOG_LAST_NUMBER;
		return true;
	}
	if (!json_is_integer(number) || json_integer_value(number) < 0 ||
		json_integer_value(number) > PG_INT32_MAX)
		return reject(out, REASON_NUMBER, PG_INT32_MAX), false;
	out->number = (int32) json_integer_value(number);
	return true;
}

/* Read "final": boolean, missing or null. */
static bool
read_final(json_t *root, ParsedPart *out)
{
	json_t	   *final = json_object_get(root, "final");

	if (final == NULL || json_is_null(final))
		out->final = false;
	else if (json_is_boolean(final))
		out->final = json_is_true(final);
	else
		return reject(out, "\"final\" is not a boolean"), false;
	return true;
}

/*
 * Decode base64 content into a palloc'd buffer, bytes at VARHDRSZ.  Returns
 * NULL with a reason on bad input.
 */
static char *
decode_base64(const char *src, size_t srclen, ParsedPart *out, size_t *len,
			  int max_part_bytes)
{
	char	   *buf;
	int			n;

	if (srclen > (size_t) max_part_bytes / 3 * 4 + 8)
		return reject(out, REASON_B64_SIZE, srclen, max_part_bytes), NULL;
	buf = palloc(VARHDRSZ + pg_b64_dec_len((int) srclen) + 1);
	n = pg_b64_decode(src, (int) srclen, buf + VARHDRSZ, pg_b64_dec_len((int) srclen));
	if (n < 0)
		return reject(out, "\"log\" is not valid base64"), NULL;
	*len = (size_t) n;
	return buf;
}

/*
 * Copy "log" (decoded when base64) into a palloc'd buffer, bytes at
 * VARHDRSZ; jansson memory must not escape.  Returns NULL with a reason on
 * bad input.
 */
static char *
read_log(json_t *root, ParsedPart *out, size_t *len, int max_part_bytes)
{
	json_t	   *log = json_object_get(root, "log");
	json_t	   *encoding = json_object_get(root, "encoding");
	const char *src = "";
	size_t		srclen = 0;
	bool		base64 = false;
	char	   *buf;

	if (log != NULL && !json_is_null(log))
	{
		if (!json_is_string(log))
			return reject(out, "\"log\" is not a string"), NULL;
		src = json_string_value(log);
		srclen = json_string_length(log);
	}
	if (encoding != NULL && !json_is_null(encoding))
	{
		if (!json_is_string(encoding))
			return reject(out, "\"encoding\" is not a string"), NULL;
		if (strcmp(json_string_value(encoding), "base64") != 0)
			return reject(out, "unknown \"encoding\" (only \"base64\" is supported)"), NULL;
		base64 = true;
	}
	if (!base64)
	{
		if (srclen > (size_t) max_part_bytes)
			return reject(out, REASON_SIZE, srclen, max_part_bytes), NULL;
		buf = palloc(VARHDRSZ + srclen + 1);
		memcpy(buf + VARHDRSZ, src, srclen);
		*len = srclen;
		return buf;
	}
	return decode_base64(src, srclen, out, len, max_part_bytes);
}

/*
 * Clean raw content (len bytes at buf + VARHDRSZ) into the part's text value,
 * within the limit; valid content becomes the text in place, without a copy.
 */
static void
set_content(ParsedPart *out, char *buf, size_t len, int max_part_bytes)
{
	Utf8Cleaned c = buildlog_utf8_clean(buf + VARHDRSZ, len);

	out->replaced += c.replaced;
	if (c.len > (size_t) max_part_bytes)
	{
		reject(out, REASON_SIZE, c.len, max_part_bytes);
		return;
	}
	if (c.data == buf + VARHDRSZ)
		out->content = (text *) buf;
	else
	{
		out->content = (text *) palloc(VARHDRSZ + c.len);
		memcpy(VARDATA(out->content), c.data, c.len);
	}
	SET_VARSIZE(out->content, VARHDRSZ + c.len);
	out->ok = true;
}

/*
 * Finish a part the scanner read: the same checks and reasons as the jansson
 * path, without copying the content again.
 */
static void
finish_scanned(ScannedMessage *m, ParsedPart *out, int max_part_bytes)
{
	char	   *buf = m->log;
	size_t		len = m->loglen;

	if (m->job_id <= 0)
	{
		reject(out, REASON_ID);
		return;
	}
	if (m->number > PG_INT32_MAX)
	{
		reject(out, REASON_NUMBER, PG_INT32_MAX);
		return;
	}
	out->job_id = m->job_id;
	out->number = (int32) m->number;
	out->final = m->final;
	if (buf == NULL)
	{
		buf = palloc(VARHDRSZ + 1);
		len = 0;
	}
	if (m->base64)
		buf = decode_base64(buf + VARHDRSZ, len, out, &len, max_part_bytes);
	else if (len > (size_t) max_part_bytes)
	{
		reject(out, REASON_SIZE, len, max_part_bytes);
		return;
	}
	if (buf != NULL)
		set_content(out, buf, len, max_part_bytes);
}

void
buildlog_parse_part(const char *body, size_t len, int max_part_bytes,
					bool reference_only, ParsedPart *out)
{
	Utf8Cleaned clean;
	ScannedMessage scanned;
	json_error_t error;
	json_t	   *root;
	char	   *raw = NULL;
	size_t		rawlen = 0;
	static bool allocator_set = false;

	if (!allocator_set)
	{
		json_set_alloc_funcs(json_palloc, json_pfree);
		allocator_set = true;
	}
	memset(out, 0, sizeof(*out));
	/* jansson refuses invalid UTF-8 anywhere: clean the body first */
	clean = buildlog_utf8_clean(body, len);
	out->replaced = clean.replaced;
	if (!reference_only && buildlog_scan_message(clean.data, clean.len, &scanned))
	{
		finish_scanned(&scanned, out, max_part_bytes);
		return;
	}
	root = json_loadb(clean.data, clean.len, JSON_ALLOW_NUL, &error);
	if (root == NULL)
	{
		reject(out, "not valid JSON: %s (line %d, column %d)",
			   error.text, error.line, error.column);
		return;
	}
	if (!json_is_object(root))
		reject(out, "not a JSON object");
	else if (read_job_id(root, out) && read_number(root, out) &&
			 read_final(root, out))
		raw = read_log(root, out, &rawlen, max_part_bytes);
	json_decref(root);

	if (raw != NULL)
		set_content(out, raw, rawlen, max_part_bytes);
}
