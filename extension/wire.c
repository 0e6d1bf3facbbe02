/*-------------------------------------------------------------------------
 * wire.c
 *	  travis-worker wire format: {"id", "log", "number", "final",
 *	  "encoding", "uuid", "meta", ...}.
 *
 * id: integer > 0.  number: integer >= 0 or "last" (2147483647).  log: a
 * string (missing means empty), base64 when "encoding" is "base64".  final:
 * boolean (missing or null means false).  uuid, meta and unknown fields are
 * only checked for JSON syntax and decide nothing else.  Duplicate keys: the
 * last wins.  Keys are compared after unescaping ("\u0069d" is "id").
 * Integers are written without fraction or exponent (1.0 and 1e2 are not).
 *
 * The body is parsed as bytes: invalid UTF-8 inside strings is allowed, and
 * the content is cleaned after decoding, so invalid bytes, NUL and lone
 * surrogates never cost a part; they become U+FFFD and are counted.
 *
 * Two parsers read a body: the fast scanner (wire_scan.c) answers for the common
 * shape, the reference parser (wire_ref.c) for everything else and words
 * every rejection.  Both end in the same checks below and share the strict
 * base64 decoder (wire_base64.c), so they agree on every input (05_parse.sql and
 * script/bench parse compare them).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utf8.h"
#include "wire_base64.h"
#include "wire.h"
#include "wire_scan.h"
#include "wire_ref.h"

/* Mark the part rejected with a formatted reason (nothing stored: 0 replaced). */
static void pg_attribute_printf(2, 3)
reject(ParsedPart *out, const char *fmt,...)
{
	va_list		ap;

	out->ok = false;
	out->replaced = 0;
	va_start(ap, fmt);
	vsnprintf(out->reason, PART_REASON_LEN, fmt, ap);
	va_end(ap);
}

/* Reasons worded once for both parsers. */
#define REASON_ID		"\"id\" is not a positive integer"
#define REASON_NUMBER	"\"number\" is neither an integer from 0 to %d nor \"last\""
#define REASON_SIZE		"part of %zu bytes exceeds buildlog.max_part_bytes (%d)"

/*
 * Clean raw content (len bytes at buf + VARHDRSZ) into the part's text value,
 * within the limit; valid content becomes the text in place, without a copy.
 */
static void
set_content(ParsedPart *out, char *buf, size_t len, int max_part_bytes)
{
	Utf8Cleaned c = buildlog_utf8_clean(buf + VARHDRSZ, len);

	if (c.len > (size_t) max_part_bytes)
	{
		reject(out, REASON_SIZE, c.len, max_part_bytes);
		out->too_large = true;
		return;
	}
	out->replaced += c.replaced;
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

void
buildlog_part_content(ParsedPart *out, const char *field, char *buf, size_t len,
					  bool base64, int max_part_bytes)
{
	if (base64)
	{
		char		why[PART_REASON_LEN];

		if (!buildlog_base64_decode(buf + VARHDRSZ, len, buf + VARHDRSZ, &len,
									why, sizeof(why)))
		{
			reject(out, "\"%s\" is not valid base64: %s", field, why);
			return;
		}
	}
	if (len > (size_t) max_part_bytes)
	{
		reject(out, REASON_SIZE, len, max_part_bytes);
		out->too_large = true;
		return;
	}
	set_content(out, buf, len, max_part_bytes);
}

/*
 * Finish a part the scanner read: the same checks and reasons as the
 * reference path, without copying the content again.
 */
static void
finish_scanned(ScannedMessage *m, ParsedPart *out, int max_part_bytes)
{
	char	   *buf = m->log;

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
		m->loglen = 0;
	}
	buildlog_part_content(out, "log", buf, m->loglen, m->base64, max_part_bytes);
}

/* Does the raw string value v unescape to exactly word? */
static bool
string_is(const WireValue *v, const char *word)
{
	char		buf[64];
	size_t		n;
	int			lone;

	/* an escape takes at most 6 characters per byte of an ASCII word */
	if (v->kind != WK_STRING || v->len > sizeof(buf) || v->len > strlen(word) * 6)
		return false;
	n = buildlog_wire_unescape(v->start, v->len, buf, &lone);
	return n == strlen(word) && memcmp(buf, word, n) == 0;
}

/* Is the field there?  Rejected as missing when not. */
static bool
has_field(const WireMessage *m, WireField field, const char *name,
		  ParsedPart *out)
{
	if (m->field[field].kind != WK_MISSING)
		return true;
	reject(out, "missing \"%s\"", name);
	return false;
}

/* Read "id" (present); false (with reason) unless it is an integer > 0. */
static bool
read_job_id(const WireMessage *m, ParsedPart *out)
{
	int64		value;

	if (!buildlog_wire_integer(&m->field[WF_ID], 1, PG_INT64_MAX, &value))
		return reject(out, REASON_ID), false;
	out->job_id = value;
	return true;
}

/* Read "number" (present): an integer 0..2147483647 or the string "last". */
static bool
read_number(const WireMessage *m, ParsedPart *out)
{
	const WireValue *number = &m->field[WF_NUMBER];
	int64		value;

	if (string_is(number, "last"))
		value = BUILDLOG_LAST_NUMBER;
	else if (!buildlog_wire_integer(number, 0, PG_INT32_MAX, &value))
		return reject(out, REASON_NUMBER, PG_INT32_MAX), false;
	out->number = (int32) value;
	return true;
}

/* Read "final": boolean, missing or null. */
static bool
read_final(const WireMessage *m, ParsedPart *out)
{
	WireKind	kind = m->field[WF_FINAL].kind;

	if (kind != WK_MISSING && kind != WK_NULL && kind != WK_TRUE && kind != WK_FALSE)
		return reject(out, "\"final\" is not a boolean"), false;
	out->final = (kind == WK_TRUE);
	return true;
}

/* Read "log" and "encoding", then decode, check and clean the content. */
static void
read_log(const WireMessage *m, ParsedPart *out, int max_part_bytes)
{
	const WireValue *log = &m->field[WF_LOG];
	const WireValue *encoding = &m->field[WF_ENCODING];
	char	   *buf;
	size_t		len = 0;
	int			lone = 0;

	if (log->kind != WK_MISSING && log->kind != WK_NULL && log->kind != WK_STRING)
	{
		reject(out, "\"log\" is not a string");
		return;
	}
	if (encoding->kind != WK_MISSING && encoding->kind != WK_NULL &&
		encoding->kind != WK_STRING)
	{
		reject(out, "\"encoding\" is not a string");
		return;
	}
	if (encoding->kind == WK_STRING && !string_is(encoding, "base64"))
	{
		reject(out, "unknown \"encoding\" (only \"base64\" is supported)");
		return;
	}
	/* unescaping never makes a string longer */
	buf = palloc_extended(VARHDRSZ + (log->kind == WK_STRING ? log->len : 0) + 1,
						  MCXT_ALLOC_HUGE);
	if (log->kind == WK_STRING)
		len = buildlog_wire_unescape(log->start, log->len, buf + VARHDRSZ, &lone);
	out->replaced = lone;
	buildlog_part_content(out, "log", buf, len, encoding->kind == WK_STRING, max_part_bytes);
}

/* The reference path: check the whole body, then the fields in order. */
static void
parse_reference(const char *body, size_t len, int max_part_bytes, ParsedPart *out)
{
	WireMessage m;
	char		why[PART_REASON_LEN];

	if (!buildlog_wire_parse(body, len, &m, why, sizeof(why)))
		reject(out, "not valid JSON: %s", why);
	else if (!m.object)
		reject(out, "not a JSON object");
	else if (has_field(&m, WF_ID, "id", out) && read_job_id(&m, out) &&
			 has_field(&m, WF_NUMBER, "number", out) && read_number(&m, out) &&
			 read_final(&m, out))
		read_log(&m, out, max_part_bytes);
}

void
buildlog_parse_part(const char *body, size_t len, int max_part_bytes,
					bool reference_only, ParsedPart *out)
{
	ScannedMessage scanned;

	memset(out, 0, sizeof(*out));
	if (!reference_only)
	{
		if (buildlog_scan_message(body, len, &scanned))
		{
			finish_scanned(&scanned, out, max_part_bytes);
			return;
		}
		if (scanned.log != NULL)
			pfree(scanned.log);
	}
	parse_reference(body, len, max_part_bytes, out);
}
