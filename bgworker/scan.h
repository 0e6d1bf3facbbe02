/*-------------------------------------------------------------------------
 * scan.h
 *	  One-pass scanner for well-formed travis-worker messages.
 *
 * jansson builds a tree and lexes one character at a time through a stream
 * abstraction, which costs most of a drain worker's CPU on large parts.  The
 * scanner reads the usual message shape in one pass and decodes "log" straight
 * into a text buffer.  It only answers when it is sure: anything unusual
 * (malformed JSON, escaped keys, duplicate fields we read, numbers that are
 * not plain digits, unexpected types) makes it return false, and jansson,
 * the reference parser, decides and words the rejection.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SCAN_H
#define BUILDLOG_SCAN_H

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
} ScannedMessage;

/*
 * Scan body (valid UTF-8, as cleaned by the caller).  True when body is a
 * well-formed JSON object of the usual shape and *m holds its fields; false
 * when the reference parser must decide.  Never raises an ERROR for bad input.
 */
extern bool buildlog_scan_message(const char *body, size_t len, ScannedMessage *m);

#endif							/* BUILDLOG_SCAN_H */
