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

/*
 * Clean buf: returns the input unchanged (no copy) when it is already valid,
 * otherwise a palloc'd copy with replacements.
 */
extern Utf8Cleaned buildlog_utf8_clean(const char *buf, size_t len);

/* Append code point cp (at most U+10FFFF) as UTF-8 at *o, advancing it. */
static inline void
buildlog_put_utf8(char **o, unsigned int cp)
{
	unsigned char *u = (unsigned char *) *o;

	if (cp < 0x80)
		*u++ = cp;
	else if (cp < 0x800)
	{
		*u++ = 0xC0 | (cp >> 6);
		*u++ = 0x80 | (cp & 0x3F);
	}
	else if (cp < 0x10000)
	{
		*u++ = 0xE0 | (cp >> 12);
		*u++ = 0x80 | ((cp >> 6) & 0x3F);
		*u++ = 0x80 | (cp & 0x3F);
	}
	else
	{
		*u++ = 0xF0 | (cp >> 18);
		*u++ = 0x80 | ((cp >> 12) & 0x3F);
		*u++ = 0x80 | ((cp >> 6) & 0x3F);
		*u++ = 0x80 | (cp & 0x3F);
	}
	*o = (char *) u;
}

#endif							/* BUILDLOG_UTF8_H */
