/*-------------------------------------------------------------------------
 * ansi.c
 *	  Stripping ANSI escape sequences from log text (see ansi.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "ansi.h"

#define ESC		0x1b
#define BEL		0x07

/*
 * Length of the escape sequence at in[i] (in[i] is ESC), up to len.  As a
 * terminal (and the viewer) does, a sequence never runs past a line: an
 * unterminated one ends before its newline, so one stray ESC cannot
 * swallow the rest of a log; and a sequence ends before a byte it cannot
 * hold, so a multi-byte character is never cut.
 */
static size_t
escape_length(const char *in, size_t i, size_t len)
{
	size_t		j = i + 1;
	unsigned char c;

	if (j >= len)
		return 1;				/* a lone ESC at the end */
	if (in[j] == '[')
	{
		/* CSI: parameter and intermediate bytes 0x20..0x3f, a final byte @..~ */
		for (j++; j < len; j++)
		{
			c = (unsigned char) in[j];
			if (c >= 0x40 && c <= 0x7e)
				return j + 1 - i;
			if (c < 0x20 || c > 0x3f)
				return j - i;	/* malformed: it ends here, c is text */
		}
		return len - i;
	}
	if (in[j] == ']')
	{
		/* OSC: up to BEL or ST (ESC \), never past the line */
		for (j++; j < len; j++)
		{
			if (in[j] == BEL)
				return j + 1 - i;
			if (in[j] == ESC && j + 1 < len && in[j + 1] == '\\')
				return j + 2 - i;
			if (in[j] == '\n')
				return j - i;
		}
		return len - i;
	}
	c = (unsigned char) in[j];
	if (c < 0x20 || c >= 0x7f)
		return 1;				/* ESC before a control or non-ASCII byte: ESC alone */
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
