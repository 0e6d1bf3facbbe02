/*-------------------------------------------------------------------------
 * utf8.c
 *	  UTF-8 validation and cleaning for every ingest path.
 *
 * Log chunks come from job runners that cut output at arbitrary byte
 * boundaries and print whatever the build printed.  We store valid UTF-8
 * text only, but never drop a byte silently: each maximal invalid subpart
 * (the Unicode/WHATWG decoder rule) and each NUL becomes one U+FFFD, and the
 * caller learns how many substitutions were made.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <string.h>

#include "utils/memutils.h"

#include "utf8.h"

/* Length of the longest prefix of buf that is valid UTF-8 without NUL. */
static size_t buildlog_utf8_valid_prefix(const char *buf, size_t len);

#define REPLACEMENT_CHAR	"\xEF\xBF\xBD"
#define REPLACEMENT_LEN		3

/* True when the 8 bytes at p are all ASCII and none is NUL. */
static inline bool
ascii_word_clean(const unsigned char *p)
{
	uint64		w;

	memcpy(&w, p, sizeof(w));
	/* high bit set anywhere, or a zero byte (classic haszero trick) */
	return ((w | ((w - UINT64CONST(0x0101010101010101)) & ~w)) &
			UINT64CONST(0x8080808080808080)) == 0;
}

static size_t
buildlog_utf8_valid_prefix(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *) buf;
	const unsigned char *end = s + len;

	while (s < end)
	{
		int			n;

		if (end - s >= 8 && ascii_word_clean(s))
		{
			s += 8;
			continue;
		}
		if (*s < 0x80)
		{
			if (*s == 0)
				break;
			s++;
			continue;
		}
		n = buildlog_utf8_sequence(s, end);
		if (n < 0)
			break;
		s += n;
	}
	return s - (const unsigned char *) buf;
}

Utf8Cleaned
buildlog_utf8_clean(const char *buf, size_t len)
{
	Utf8Cleaned result;
	size_t		valid = buildlog_utf8_valid_prefix(buf, len);
	const unsigned char *s;
	const unsigned char *end;
	char	   *out;
	char	   *o;

	result.data = buf;
	result.len = len;
	result.replaced = 0;
	if (valid == len)
		return result;

	/* worst case: every remaining byte becomes a 3-byte U+FFFD */
	if ((len - valid) > (MaxAllocHugeSize - valid) / REPLACEMENT_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("log part too large to clean"),
				 errdetail("The part has %zu bytes, %zu of them after the first invalid byte; each may become 3 bytes.",
						   len, len - valid),
				 errhint("Send the log in smaller parts.")));
	out = palloc_extended(valid + (len - valid) * REPLACEMENT_LEN + 1,
						  MCXT_ALLOC_HUGE);
	memcpy(out, buf, valid);
	o = out + valid;
	s = (const unsigned char *) buf + valid;
	end = (const unsigned char *) buf + len;

	while (s < end)
	{
		size_t		run = buildlog_utf8_valid_prefix((const char *) s, end - s);
		int			n;

		memcpy(o, s, run);
		o += run;
		s += run;
		if (s >= end)
			break;
		/* s is at a NUL or at the start of an invalid subpart */
		n = (*s == 0) ? -1 : buildlog_utf8_sequence(s, end);
		Assert(n < 0);
		memcpy(o, REPLACEMENT_CHAR, REPLACEMENT_LEN);
		o += REPLACEMENT_LEN;
		s += -n;
		result.replaced++;
	}
	*o = '\0';
	result.data = out;
	result.len = o - out;
	return result;
}
