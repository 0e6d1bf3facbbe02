/*-------------------------------------------------------------------------
 * wire_scan.h
 *	  One-pass scanner for well-formed travis-worker messages.
 *
 * The scanner reads the usual message shape in one pass and decodes "log"
 * straight into a text buffer.  It only answers when it is sure jansson
 * would accept the body and read the same part: anything unusual (malformed
 * JSON, invalid UTF-8, escaped keys, duplicate fields we read, ids and
 * numbers that are not plain digits, big numbers anywhere, lone surrogates,
 * NUL in keys, unexpected types) makes it return false, and jansson
 * (wire_json.h) decides and words the rejection.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_SCAN_H
#define BUILDLOG_WIRE_SCAN_H

#include "postgres.h"

/* What the scanner read from one message. */
typedef struct ScannedMessage
{
	int64		job_id;			/* as written: the caller checks > 0 */
	int64		number;			/* as written, or BUILDLOG_LAST_NUMBER for "last" */
	bool		final;
	bool		base64;			/* "encoding": "base64" */
	char	   *log;			/* decoded "log" at VARHDRSZ into a palloc'd
								 * buffer, or NULL when missing or null */
	size_t		loglen;
	bool		log_clean;		/* "log" is valid UTF-8 without NUL (its raw
								 * bytes were checked and no \u0000 was read):
								 * nothing to clean unless base64 */
} ScannedMessage;

/*
 * Scan body (any bytes).  True when body is a well-formed JSON object of the
 * usual shape and *m holds its fields; false when jansson must
 * decide (m->log may then hold a buffer the caller frees).  Never raises an
 * ERROR for bad input.
 */
extern bool buildlog_scan_message(const char *body, size_t len, ScannedMessage *m);

#endif							/* BUILDLOG_WIRE_SCAN_H */
