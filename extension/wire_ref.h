/*-------------------------------------------------------------------------
 * wire_ref.h
 *	  The reference parser of the wire format: a complete RFC 8259 checker
 *	  that hands back the raw text of the top-level members buildlog reads.
 *
 * It decides every body the fast scanner (wire_scan.h) does not, words the
 * rejections, and is what parse_message(body, reference => true) runs, so
 * the tests can compare the two.  It never builds a tree and gives no
 * meaning to anything but the five fields it reports: numbers of any size,
 * escapes of any kind (lone surrogates, \u0000), keys of any content,
 * duplicates and nesting of any depth in other fields are only checked for
 * syntax.  Iterative, so depth costs one bit per level, never the stack.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_REF_H
#define BUILDLOG_WIRE_REF_H

#include "postgres.h"

/* The fields buildlog reads, in the order they are checked. */
typedef enum WireField
{
	WF_ID, WF_NUMBER, WF_FINAL, WF_LOG, WF_ENCODING, WF_COUNT
} WireField;

/* What a top-level value is. */
typedef enum WireKind
{
	WK_MISSING = 0, WK_STRING, WK_NUMBER, WK_TRUE, WK_FALSE, WK_NULL,
	WK_OBJECT, WK_ARRAY
} WireKind;

/* One member's value as written: for strings, the text between the quotes. */
typedef struct WireValue
{
	WireKind	kind;
	const char *start;
	size_t		len;
} WireValue;

/* A syntactically valid body: is it an object, and its last value per field. */
typedef struct WireMessage
{
	bool		object;
	WireValue	field[WF_COUNT];
} WireMessage;

/*
 * Check body against RFC 8259 (after an optional UTF-8 BOM; raw bytes >=
 * 0x80 and NUL are allowed inside strings, the content is cleaned later).
 * True with *m filled (duplicate keys: the last wins; keys are compared
 * after unescaping), or false with the error and its byte offset in reason.
 */
extern bool buildlog_wire_parse(const char *body, size_t len, WireMessage *m,
								char *reason, size_t reasonlen);

/*
 * Unescape the raw string text [s, s + len) into out (room for len bytes is
 * enough).  Returns the decoded length; *lone counts lone surrogates, each
 * written as U+FFFD.  The text must have passed buildlog_wire_parse.
 */
extern size_t buildlog_wire_unescape(const char *s, size_t len, char *out, int *lone);

/*
 * Value of an integer written as -?(0|[1-9][0-9]*) (no fraction, no
 * exponent: 1.0 and 1e2 are not integers) within [min, max]; false when the
 * number is of another form or out of range.
 */
extern bool buildlog_wire_integer(const WireValue *v, int64 min, int64 max, int64 *value);

#endif							/* BUILDLOG_WIRE_REF_H */
