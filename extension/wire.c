/*-------------------------------------------------------------------------
 * wire.c
 *	  travis-worker wire format: {"id", "log", "number", "final",
 *	  "encoding", "uuid", "meta", ...}.
 *
 * id: integer > 0.  number: integer >= 0 or "last" (2147483647).  log: a
 * string (missing or null means empty), base64 when "encoding" is "base64".
 * final: boolean (missing or null means false).  uuid, meta and unknown
 * fields decide nothing, but the whole body must be JSON that jansson
 * accepts.  Duplicate keys: the last wins.  Keys are compared after
 * unescaping ("\u0069d" is "id").  Integers are written without fraction or
 * exponent (1.0 and 1e2 are not).
 *
 * Two parsers read a body: the fast scanner (wire_scan.c) answers for the
 * common shape, jansson (wire_json.c) decides everything else and words
 * every rejection of the JSON.  Both end in the same checks below and share
 * the strict base64 decoder (wire_base64.c); the scanner accepts only what
 * jansson accepts and makes the same part of it (05_parse.sql and
 * script/bench parse compare them).  The content is cleaned after
 * decoding: NUL (\u0000) and invalid UTF-8 of base64-decoded bytes become
 * U+FFFD and are counted, never silently dropped.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utf8.h"
#include "wire_base64.h"
#include "wire.h"
#include "wire_scan.h"
#include "wire_json.h"

void
buildlog_part_reject(ParsedPart *out, const char *fmt,...)
{
	va_list		ap;

	out->ok = false;
	out->replaced = 0;
	va_start(ap, fmt);
	vsnprintf(out->reason, PART_REASON_LEN, fmt, ap);
	va_end(ap);
}

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
		buildlog_part_reject(out, REASON_SIZE, c.len, max_part_bytes);
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
			buildlog_part_reject(out, "\"%s\" is not valid base64: %s", field, why);
			return;
		}
	}
	if (len > (size_t) max_part_bytes)
	{
		buildlog_part_reject(out, REASON_SIZE, len, max_part_bytes);
		out->too_large = true;
		return;
	}
	set_content(out, buf, len, max_part_bytes);
}

/*
 * Finish a part the scanner read: the same checks and reasons as the
 * jansson path, without copying the content again.
 */
static void
finish_scanned(ScannedMessage *m, ParsedPart *out, int max_part_bytes)
{
	char	   *buf = m->log;

	if (m->job_id <= 0)
	{
		buildlog_part_reject(out, PART_REASON_ID);
		return;
	}
	if (m->number > PG_INT32_MAX)
	{
		buildlog_part_reject(out, PART_REASON_NUMBER, PG_INT32_MAX);
		return;
	}
	out->job_id = m->job_id;
	out->number = (int32) m->number;
	out->final = m->final;
	if (buf == NULL)
	{
		buf = palloc(VARHDRSZ + 1);
		m->loglen = 0;
		m->log_clean = true;
	}
	if (m->log_clean && !m->base64)
	{
		/* checked while scanned: what cleaning would leave as it is */
		if (m->loglen > (size_t) max_part_bytes)
		{
			buildlog_part_reject(out, REASON_SIZE, m->loglen, max_part_bytes);
			out->too_large = true;
			return;
		}
		out->content = (text *) buf;
		SET_VARSIZE(out->content, VARHDRSZ + m->loglen);
		out->ok = true;
		return;
	}
	buildlog_part_content(out, "log", buf, m->loglen, m->base64, max_part_bytes);
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
	buildlog_json_parse_part(body, len, max_part_bytes, out);
}
