/*-------------------------------------------------------------------------
 * wire_base64.h
 *	  Strict RFC 4648 base64 decoding of a part's "log", shared by the fast
 *	  scanner's path and jansson's (wire_json.c).
 *
 * Alphabet A-Z a-z 0-9 + /, length a multiple of 4, "=" padding only at the
 * end, padding bits zero (RFC 4648 section 3.5: one string per byte
 * sequence).  CR and LF are skipped wherever they appear, so line-wrapped
 * base64 (MIME, Ruby's Base64.encode64: "\n" every 60 characters and at the
 * end) is accepted; any other character, a space or tab included, is not.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_BASE64_H
#define BUILDLOG_WIRE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Decode len characters at src into dst (room for len / 4 * 3 + 3 bytes;
 * dst == src is allowed: output never overtakes input).  True with *dstlen
 * set, or false with why (and the offset of the offending character in src)
 * written to reason.
 */
extern bool buildlog_base64_decode(const char *src, size_t len, char *dst,
								   size_t *dstlen, char *reason, size_t reasonlen);

#endif							/* BUILDLOG_WIRE_BASE64_H */
