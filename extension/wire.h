/*-------------------------------------------------------------------------
 * wire.h
 *	  Parsing of travis-worker log part messages (JSON) into parts.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_H
#define BUILDLOG_WIRE_H

#include "postgres.h"

/* Travis's "last" part number: the string "last" of the wire format. */
#define BUILDLOG_LAST_NUMBER	PG_INT32_MAX

/* room for jansson's error text (at most 160 bytes) and its position */
#define PART_REASON_LEN 256

/* Reasons worded once for the scanner's and jansson's paths. */
#define PART_REASON_ID		"\"id\" is not a positive integer"
#define PART_REASON_NUMBER	"\"number\" is neither an integer from 0 to %d nor \"last\""

/* One message body, parsed: a part to store or the reason to keep it aside. */
typedef struct ParsedPart
{
	bool		ok;
	int64		job_id;
	int32		number;
	bool		final;
	text	   *content;		/* valid UTF-8, palloc'd */
	int			replaced;		/* U+FFFD substitutions in the content (NUL,
								 * invalid UTF-8 of base64-decoded bytes); 0
								 * when rejected (nothing is stored as text) */
	char		reason[PART_REASON_LEN];	/* when !ok */
	bool		too_large;		/* rejected for buildlog.max_part_bytes */
} ParsedPart;

/*
 * Parse body (any bytes).  Never raises an ERROR for bad input: the verdict
 * is in out->ok / out->reason (out of memory is an ERROR).  Allocates in
 * CurrentMemoryContext.  The fast scanner (wire_scan.h) reads the common
 * shape; jansson (wire_json.h) decides everything else.  reference_only
 * skips the scanner so tests can compare the two.
 */
extern void buildlog_parse_part(const char *body, size_t len,
								int max_part_bytes, bool reference_only,
								ParsedPart *out);

/*
 * The last steps of every parser of a part's content: decode base64 (in
 * place) or not, check the size, clean the UTF-8.  buf holds the content
 * (unescaped) at VARHDRSZ, len bytes, with room to keep it; field names it
 * in the reasons.  Fills out->content / replaced, or out->ok = false with
 * the reason.
 */
extern void buildlog_part_content(ParsedPart *out, const char *field, char *buf,
								  size_t len, bool base64, int max_part_bytes);

/* Mark the part rejected with a formatted reason (nothing stored: 0 replaced). */
extern void buildlog_part_reject(ParsedPart *out, const char *fmt,...) pg_attribute_printf(2, 3);

#endif							/* BUILDLOG_WIRE_H */
