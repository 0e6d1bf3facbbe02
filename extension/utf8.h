/*-------------------------------------------------------------------------
 * utf8.h
 *	  The one UTF-8 cleaning routine every ingest path uses.
 *
 * Invalid sequences (by the WHATWG/Unicode "maximal subpart" rule) and NUL
 * bytes become U+FFFD and are counted; valid text passes byte for byte.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_UTF8_H
#define BUILDLOG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Result of cleaning one buffer. */
typedef struct Utf8Cleaned
{
	const char *data;			/* clean bytes: the input itself or a palloc'd copy */
	size_t		len;
	int			replaced;		/* number of U+FFFD substitutions made */
} Utf8Cleaned;

/* Length of the longest prefix of buf that is valid UTF-8 without NUL. */
extern size_t buildlog_utf8_valid_prefix(const char *buf, size_t len);

/*
 * Clean buf: returns the input unchanged (no copy) when it is already valid,
 * otherwise a palloc'd copy with replacements.
 */
extern Utf8Cleaned buildlog_utf8_clean(const char *buf, size_t len);

#endif							/* BUILDLOG_UTF8_H */
