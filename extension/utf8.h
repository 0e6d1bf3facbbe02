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
#include <stdbool.h>
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

/*
 * Scan one sequence starting at s (s < end, *s >= 0x80).  Returns its length
 * when valid (RFC 3629: no overlong forms, surrogates or code points above
 * U+10FFFF, as jansson checks), or the negated length of the maximal invalid
 * subpart (>= 1).
 */
static inline int
buildlog_utf8_sequence(const unsigned char *s, const unsigned char *end)
{
	unsigned char c = s[0];
	unsigned char lower = 0x80;
	unsigned char upper = 0xBF;
	int			need;
	int			i;

	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		need = 2;
		if (c == 0xE0)
			lower = 0xA0;		/* overlong */
		else if (c == 0xED)
			upper = 0x9F;		/* surrogates */
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		need = 3;
		if (c == 0xF0)
			lower = 0x90;		/* overlong */
		else if (c == 0xF4)
			upper = 0x8F;		/* above U+10FFFF */
	}
	else
		return -1;				/* continuation byte, C0/C1, F5..FF */

	for (i = 1; i <= need; i++)
	{
		if (s + i >= end || s[i] < lower || s[i] > upper)
			return -i;			/* truncated or bad continuation */
		lower = 0x80;
		upper = 0xBF;
	}
	return need + 1;
}

#endif							/* BUILDLOG_UTF8_H */
