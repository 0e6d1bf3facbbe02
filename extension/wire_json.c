/*-------------------------------------------------------------------------
 * wire_json.c
 *	  jansson reads the bodies the fast scanner does not (see wire_json.h).
 *
 * jansson (2.14) parses the whole body into a tree with its default
 * allocator, malloc.  Every call here frees the tree (json_decref) before
 * anything can raise an ERROR: the values buildlog keeps are copied into
 * palloc'd memory first (with MCXT_ALLOC_NO_OOM, so an allocation failure is
 * a NULL, not a longjmp past the tree), and the ERROR comes after the
 * decref.  jansson's allocator is left alone: palloc-based functions would
 * longjmp out of jansson's own frames on out of memory, and the malloc'd tree
 * of a body is freed right away anyway.
 *
 * Flags: JSON_ALLOW_NUL, so "\u0000" in a string is read (a NUL in the
 * content becomes U+FFFD, counted, like every other path); jansson still
 * refuses "\u0000" in a key.  No JSON_DECODE_ANY: a scalar at the top is
 * refused by jansson, an array by us ("not a JSON object").  No
 * JSON_REJECT_DUPLICATES: a duplicated key means its last value, at every
 * depth, as in the scanner and JSON.parse; duplicates in fields buildlog
 * does not read cost nothing.
 *
 * What jansson refuses is refused with its own text and position, for
 * example lone surrogate escapes ("invalid Unicode '\uD800'"), numbers beyond
 * a long long or a double ("too big integer", "real number overflow"), NUL
 * in a key, nesting deeper than 2048.  Three things are decided before
 * jansson: a leading UTF-8 byte order mark is skipped (RFC 8259 section 8.1
 * allows it; positions still count it), a raw NUL byte anywhere refuses the
 * body (never JSON, but jansson 2.14 skips one after a number or a literal),
 * and in a message of the wire format invalid UTF-8 sequences become U+FFFD
 * and are counted (the wire format's rule; jansson refuses any), while an
 * HTTP body with one is refused.
 *
 * PostgreSQL exports a function named json_object, as jansson does: a call
 * of jansson's json_object() from here would bind to PostgreSQL's and crash
 * the backend.  Never call it, and never include utils/builtins.h here.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "utf8.h"
#include "wire.h"
#include "wire_json.h"

#define BOM				"\xEF\xBB\xBF"
#define BOM_LEN			3
#define TYPE_SHOWN		64		/* bytes of a wrong "@type" quoted back */

/*
 * Copy src into dst (dstlen > 0) as printable text: controls and bytes that
 * are not valid UTF-8 become '?', and only whole sequences fit, so the
 * result is always valid text for a reason column or an HTTP answer.
 */
static void
printable(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *) src;
	const unsigned char *end = s + srclen;
	char	   *o = dst;

	while (s < end)
	{
		int			n = (*s < 0x80) ? 1 : buildlog_utf8_sequence(s, end);

		if (n < 0 || *s < 0x20 || *s == 0x7F)
			n = 1;
		if ((size_t) (o - dst) + n >= dstlen)
			break;
		if (n == 1 && (*s < 0x20 || *s >= 0x7F))
			*o++ = '?';
		else
		{
			memcpy(o, s, n);
			o += n;
		}
		s += n;
	}
	*o = '\0';
}

/*
 * Parse body with jansson: the tree (the caller decrefs it), or NULL with
 * why jansson refused it in why ("<jansson's text> (line L, column C,
 * position P)").  Out of memory inside jansson is an ERROR (nothing is held
 * then), so a body is never kept aside for the server's lack of memory.
 */
static json_t *
load(const char *body, size_t len, int *cleaned, char *why, size_t whylen)
{
	json_error_t error;
	json_t	   *root;
	size_t		skip = 0;
	const char *nul = memchr(body, '\0', len);
	char		text[JSON_ERROR_TEXT_LENGTH];
	Utf8Cleaned clean;

	if (nul != NULL)
	{
		snprintf(why, whylen, "raw NUL byte at byte offset %zu (JSON has none outside \\u0000 escapes)",
				 (size_t) (nul - body));
		return NULL;
	}
	if (len >= BOM_LEN && memcmp(body, BOM, BOM_LEN) == 0)
		skip = BOM_LEN;

	/*
	 * The wire format stores invalid byte sequences as U+FFFD: jansson, which
	 * refuses any, reads the message with them replaced (counted in
	 * *cleaned; positions then count the replacements' bytes).
	 */
	if (cleaned != NULL)
	{
		clean = buildlog_utf8_clean(body + skip, len - skip);
		*cleaned = clean.replaced;
		if (clean.replaced > 0)
		{
			body = clean.data;
			len = clean.len;
			skip = 0;
		}
	}
	root = json_loadb(body + skip, len - skip, JSON_ALLOW_NUL, &error);
	if (root != NULL)
		return root;
	if (json_error_code(&error) == json_error_out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("jansson could not parse a JSON body of %zu bytes.", len)));
	printable(text, sizeof(text), error.text, strlen(error.text));
	/* the BOM is one character of line 1 and three bytes */
	snprintf(why, whylen, "%s (line %d, column %d, position %zu)", text, error.line,
			 error.column + (skip > 0 && error.line == 1 ? 1 : 0),
			 (size_t) error.position + skip);
	return NULL;
}

/* Is v the string word (whole, with its length: "last\u0000" is not "last")? */
static bool
string_is(json_t *v, const char *word)
{
	return json_is_string(v) && json_string_length(v) == strlen(word) &&
		memcmp(json_string_value(v), word, strlen(word)) == 0;
}

/*
 * Copy the string v (NULL: empty) into a palloc'd buffer, its bytes at
 * VARHDRSZ, the shape buildlog_part_content takes.  NULL when memory ran out
 * (the caller frees the tree, then raises the ERROR).
 */
static char *
copy_string(json_t *v, size_t *len)
{
	size_t		n = (v != NULL) ? json_string_length(v) : 0;
	char	   *buf = palloc_extended(VARHDRSZ + n + 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

	if (buf != NULL && n > 0)
		memcpy(buf + VARHDRSZ, json_string_value(v), n);
	*len = n;
	return buf;
}

/* Out of memory while holding nothing of jansson's. */
static void
copy_failed(size_t len)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("Failed to copy a log part of %zu bytes.", len)));
}

/* Read "id"; false (with reason) unless it is an integer > 0. */
static bool
read_job_id(json_t *root, ParsedPart *out)
{
	json_t	   *id = json_object_get(root, "id");

	if (id == NULL)
		return buildlog_part_reject(out, "missing \"id\""), false;
	if (!json_is_integer(id) || json_integer_value(id) <= 0)
		return buildlog_part_reject(out, PART_REASON_ID), false;
	out->job_id = (int64) json_integer_value(id);
	return true;
}

/* Read "number": an integer 0..2147483647 or the string "last". */
static bool
read_number(json_t *root, ParsedPart *out)
{
	json_t	   *number = json_object_get(root, "number");

	if (number == NULL)
		return buildlog_part_reject(out, "missing \"number\""), false;
	if (string_is(number, "last"))
		out->number = BUILDLOG_LAST_NUMBER;
	else if (json_is_integer(number) && json_integer_value(number) >= 0 &&
			 json_integer_value(number) <= PG_INT32_MAX)
		out->number = (int32) json_integer_value(number);
	else
		return buildlog_part_reject(out, PART_REASON_NUMBER, PG_INT32_MAX), false;
	return true;
}

/* Read "final": boolean, missing or null. */
static bool
read_final(json_t *root, ParsedPart *out)
{
	json_t	   *final = json_object_get(root, "final");

	if (final != NULL && !json_is_null(final) && !json_is_boolean(final))
		return buildlog_part_reject(out, "\"final\" is not a boolean"), false;
	out->final = (final != NULL && json_is_true(final));
	return true;
}

/*
 * Check "log" and "encoding" and copy the log (still encoded) out of the
 * tree; NULL with the reason when they are wrong, or with *oom set.
 */
static char *
read_log(json_t *root, ParsedPart *out, size_t *len, bool *base64, bool *oom)
{
	json_t	   *log = json_object_get(root, "log");
	json_t	   *encoding = json_object_get(root, "encoding");
	char	   *buf;

	if (log != NULL && json_is_null(log))
		log = NULL;
	if (encoding != NULL && json_is_null(encoding))
		encoding = NULL;
	if (log != NULL && !json_is_string(log))
		return buildlog_part_reject(out, "\"log\" is not a string"), NULL;
	if (encoding != NULL && !json_is_string(encoding))
		return buildlog_part_reject(out, "\"encoding\" is not a string"), NULL;
	if (encoding != NULL && !string_is(encoding, "base64"))
		return buildlog_part_reject(out, "unknown \"encoding\" (only \"base64\" is supported)"), NULL;
	*base64 = (encoding != NULL);
	buf = copy_string(log, len);
	*oom = (buf == NULL);
	return buf;
}

void
buildlog_json_parse_part(const char *body, size_t len, int max_part_bytes,
						 ParsedPart *out)
{
	char		why[PART_REASON_LEN];
	int			cleaned = 0;
	json_t	   *root = load(body, len, &cleaned, why, sizeof(why));
	char	   *buf = NULL;
	size_t		loglen = 0;
	bool		base64 = false;
	bool		oom = false;

	if (root == NULL)
	{
		buildlog_part_reject(out, "not valid JSON: %s", why);
		return;
	}
	if (!json_is_object(root))
		buildlog_part_reject(out, "not a JSON object");
	else if (read_job_id(root, out) && read_number(root, out) && read_final(root, out))
		buf = read_log(root, out, &loglen, &base64, &oom);
	json_decref(root);
	if (oom)
		copy_failed(loglen);
	if (buf != NULL)
		buildlog_part_content(out, "log", buf, loglen, base64, max_part_bytes);
	/* the message's invalid sequences count as the part's replacements */
	if (out->ok)
		out->replaced += cleaned;
}

/*
 * Check a log_part's "@type", "content", "final" and "encoding" (in that
 * order, the sentences of the 400) and copy its content out of the tree.
 */
static char *
read_log_part(json_t *root, ParsedPart *out, size_t *len, bool *base64, bool *oom)
{
	json_t	   *type = json_object_get(root, "@type");
	json_t	   *content = json_object_get(root, "content");
	json_t	   *final = json_object_get(root, "final");
	json_t	   *encoding = json_object_get(root, "encoding");
	char		shown[TYPE_SHOWN];
	char	   *buf;

	if (type != NULL && !json_is_null(type) && !string_is(type, "log_part"))
	{
		if (!json_is_string(type))
			return buildlog_part_reject(out, "\"@type\" is not the string \"log_part\"."), NULL;
		printable(shown, sizeof(shown), json_string_value(type), json_string_length(type));
		return buildlog_part_reject(out, "\"@type\" is \"%s\", not \"log_part\".", shown), NULL;
	}
	if (content == NULL || !json_is_string(content))
		return buildlog_part_reject(out, "\"content\" must be a string."), NULL;
	if (final != NULL && !json_is_null(final) && !json_is_boolean(final))
		return buildlog_part_reject(out, "\"final\" must be true or false."), NULL;
	if (encoding != NULL && !json_is_null(encoding) &&
		!string_is(encoding, "base64") && !string_is(encoding, "utf-8"))
	{
		if (!json_is_string(encoding))
			return buildlog_part_reject(out, "Unknown \"encoding\" (not a string): base64 or utf-8."), NULL;
		printable(shown, sizeof(shown), json_string_value(encoding), json_string_length(encoding));
		return buildlog_part_reject(out, "Unknown \"encoding\" \"%s\": base64 or utf-8.", shown), NULL;
	}
	out->final = (final != NULL && json_is_true(final));
	*base64 = string_is(encoding, "base64");
	buf = copy_string(content, len);
	*oom = (buf == NULL);
	return buf;
}

void
buildlog_json_parse_log_part(const char *body, size_t len, int max_part_bytes,
							 ParsedPart *out)
{
	char		why[PART_REASON_LEN - 32];
	json_t	   *root;
	char	   *buf = NULL;
	size_t		contentlen = 0;
	bool		base64 = false;
	bool		oom = false;

	memset(out, 0, sizeof(*out));
	/* an HTTP client is told its body is not UTF-8 (400), not cleaned */
	root = load(body, len, NULL, why, sizeof(why));
	if (root == NULL)
	{
		buildlog_part_reject(out, "The body is not valid JSON: %s.", why);
		return;
	}
	if (!json_is_object(root))
		buildlog_part_reject(out, "The body must be a JSON object (a log_part).");
	else
		buf = read_log_part(root, out, &contentlen, &base64, &oom);
	json_decref(root);
	if (oom)
		copy_failed(contentlen);
	if (buf != NULL)
		buildlog_part_content(out, "content", buf, contentlen, base64, max_part_bytes);
}
