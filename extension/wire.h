/*-------------------------------------------------------------------------
 * wire.h
 *	  Parsing of travis-worker log part messages (JSON) into parts.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_H
#define BUILDLOG_WIRE_H

#include "postgres.h"

#define PART_REASON_LEN 200

/* One message body, parsed: a part to store or the reason to keep it aside. */
typedef struct ParsedPart
{
	bool		ok;
	int64		job_id;
	int32		number;
	bool		final;
	text	   *content;		/* valid UTF-8, palloc'd */
	int			replaced;		/* U+FFFD substitutions in the content
								 * (invalid UTF-8, NUL, lone surrogates); 0
								 * when rejected (nothing is stored as text) */
	char		reason[PART_REASON_LEN];	/* when !ok */
} ParsedPart;

/*
 * Parse body (any bytes).  Never raises an ERROR for bad input: the verdict
 * is in out->ok / out->reason.  Allocates in CurrentMemoryContext.  The fast
 * scanner (wire_scan.h) reads well-formed messages; reference_only skips it so
 * tests can compare it with the reference parser (wire_ref.h).
 */
extern void buildlog_parse_part(const char *body, size_t len,
								int max_part_bytes, bool reference_only,
								ParsedPart *out);

#endif							/* BUILDLOG_WIRE_H */
