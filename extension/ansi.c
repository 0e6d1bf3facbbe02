/*-------------------------------------------------------------------------
 * ansi.c
 *	  Stripping ANSI escape sequences from log text (see ansi.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "ansi.h"

#define ESC		0x1b
#define BEL		0x07

/* Length of the escape sequence at in[i] (in[i] is ESC), up to len. */
static size_t
escape_length(const char *in, size_t i, size_t len)
{
	size_t		j = i + 1;

	if (j >= len)
		return 1;				/* a lone ESC at the end */
	if (in[j] == '[')
	{
		/* CSI: parameter and intermediate bytes, then a final byte @..~ */
		for (j++; j < len; j++)
			if ((unsigned char) in[j] >= 0x40 && (unsigned char) in[j] <= 0x7e)
				return j + 1 - i;
		return len - i;
	}
	if (in[j] == ']')
	{
		/* OSC: up to BEL or ST (ESC \) */
		for (j++; j < len; j++)
		{
			if (in[j] == BEL)
				return j + 1 - i;
			if (in[j] == ESC && j + 1 < len && in[j + 1] == '\\')
				return j + 2 - i;
		}
		return len - i;
	}
	return 2;					/* ESC and one byte (charset, keypad, ...) */
}

size_t
buildlog_strip_ansi(const char *in, size_t len, char *out)
{
	size_t		o = 0;
	size_t		i = 0;

	while (i < len)
	{
		if (in[i] == ESC)
		{
			i += escape_length(in, i, len);
			continue;
		}
		out[o++] = in[i++];
	}
	return o;
}
