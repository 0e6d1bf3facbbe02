/*-------------------------------------------------------------------------
 * wire_base64.c
 *	  Strict RFC 4648 base64 decoder (see wire_base64.h).
 *
 * PostgreSQL's pg_b64_decode accepts "=" anywhere and stops at it
 * ("QQ==QUJD" decoded to 2 bytes), so a corrupted part lost bytes silently.
 * This one decodes in one pass and rejects anything that is not canonical
 * base64, naming the offset of the first bad character.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "wire_base64.h"

/* Sextet value of each byte, -1 outside the alphabet. */
static signed char sextet[256];
static bool sextet_ready = false;

/* Fill the sextet table once per process. */
static void
init_sextets(void)
{
	const char *alphabet =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	memset(sextet, -1, sizeof(sextet));
	for (int i = 0; i < 64; i++)
		sextet[(unsigned char) alphabet[i]] = i;
	sextet_ready = true;
}

/* Word "unexpected character" for byte c at offset i. */
static void
bad_character(char *reason, size_t reasonlen, unsigned char c, size_t i)
{
	if (c > 0x20 && c < 0x7F)
		snprintf(reason, reasonlen, "unexpected character '%c' at offset %zu", c, i);
	else
		snprintf(reason, reasonlen, "unexpected byte 0x%02X at offset %zu", c, i);
}

/* Offset of the next character after i that is not CR or LF (len if none). */
static size_t
next_significant(const char *src, size_t len, size_t i)
{
	while (i < len && (src[i] == '\r' || src[i] == '\n'))
		i++;
	return i;
}

bool
buildlog_base64_decode(const char *src, size_t len, char *dst,
					   size_t *dstlen, char *reason, size_t reasonlen)
{
	unsigned char *o = (unsigned char *) dst;
	uint32		acc = 0;
	int			q = 0;			/* characters in the current quantum */
	size_t		chars = 0;		/* significant characters seen */
	size_t		last_data = 0;	/* offset of the last alphabet character */
	size_t		i;

	if (!sextet_ready)
		init_sextets();
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) src[i];
		int			v;

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=')
			break;
		v = sextet[c];
		if (v < 0)
		{
			bad_character(reason, reasonlen, c, i);
			return false;
		}
		acc = (acc << 6) | v;
		last_data = i;
		chars++;
		if (++q == 4)
		{
			*o++ = acc >> 16;
			*o++ = acc >> 8;
			*o++ = acc;
			acc = 0;
			q = 0;
		}
	}
	if (i < len)
	{
		/* padding at i: "xx==" or "xxx=", then only line breaks */
		size_t		pad = i;

		if (q < 2)
		{
			snprintf(reason, reasonlen, "misplaced \"=\" at offset %zu", pad);
			return false;
		}
		if (q == 2)
		{
			i = next_significant(src, len, i + 1);
			if (i < len && src[i] != '=')
			{
				snprintf(reason, reasonlen, "misplaced \"=\" at offset %zu", pad);
				return false;
			}
			if (i >= len)
			{
				snprintf(reason, reasonlen, "length %zu is not a multiple of 4", chars + 1);
				return false;
			}
		}
		if ((q == 2 && (acc & 0x0F) != 0) || (q == 3 && (acc & 0x03) != 0))
		{
			snprintf(reason, reasonlen, "non-zero padding bits at offset %zu", last_data);
			return false;
		}
		i = next_significant(src, len, i + 1);
		if (i < len)
		{
			if (src[i] == '=')
				snprintf(reason, reasonlen, "misplaced \"=\" at offset %zu", i);
			else
				snprintf(reason, reasonlen, "data after the padding at offset %zu", i);
			return false;
		}
		if (q == 2)
			*o++ = acc >> 4;
		else
		{
			*o++ = acc >> 10;
			*o++ = acc >> 2;
		}
		q = 0;
	}
	if (q != 0)
	{
		snprintf(reason, reasonlen, "length %zu is not a multiple of 4", chars);
		return false;
	}
	*dstlen = (char *) o - dst;
	return true;
}
