/*-------------------------------------------------------------------------
 * wire_scan.c
 *	  One-pass scanner for well-formed travis-worker messages (see wire_scan.h).
 *
 * Grammar per RFC 8259.  Agreement with jansson (wire_json.c) is what
 * matters: whatever the scanner accepts, jansson accepts with the same
 * values; whatever jansson may refuse or that takes more thought is left to
 * it: invalid UTF-8 anywhere, lone surrogates, "\u0000" in a key, numbers
 * with more than 18 integer digits or an exponent of more than 2 digits
 * (jansson refuses those beyond a long long or a double), raw NUL, escaped
 * or duplicate keys we read, deep nesting, a BOM.  test/sql/05_parse.sql and
 * script/bench parse compare both on edge cases and generated bodies.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "wire.h"
#include "utf8.h"
#include "wire_scan.h"

#define MAX_DEPTH		64		/* deeper: jansson decides */
#define MAX_INT_DIGITS	18		/* more digits: may overflow int64 */
#define MAX_EXP_DIGITS	2		/* more: may overflow a double */

typedef struct Scanner
{
	const char *p;
	const char *end;
	bool		nul_escape;		/* a \u0000 was read since last reset */
} Scanner;

/*
 * Bytes that end a run of plain string characters: '"', '\\', controls,
 * and bytes >= 0x80 (their sequence is checked: jansson refuses invalid
 * UTF-8).
 */
static bool string_special[256];
static bool tables_ready = false;

/* Fill string_special once per process. */
static void
init_tables(void)
{
	for (int c = 0; c < 0x20; c++)
		string_special[c] = true;
	for (int c = 0x80; c < 0x100; c++)
		string_special[c] = true;
	string_special['"'] = true;
	string_special['\\'] = true;
	tables_ready = true;
}

/* Skip JSON whitespace. */
static inline void
skip_ws(Scanner *s)
{
	while (s->p < s->end &&
		   (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* Consume the byte c (after whitespace); false when something else is there. */
static inline bool
expect(Scanner *s, char c)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != c)
		return false;
	s->p++;
	return true;
}

/* Read 4 hex digits at p into *cp. */
static bool
read_hex4(const char *p, const char *end, unsigned int *cp)
{
	unsigned int v = 0;

	if (end - p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return false;
	}
	*cp = v;
	return true;
}

/*
 * Decode one \u escape (p after the 'u'), pairing surrogates; returns the
 * position after it, or NULL for lone surrogates and bad hex.
 */
static const char *
decode_unicode_escape(Scanner *s, const char *p, const char *end, char **o)
{
	unsigned int cp,
				lo;

	if (!read_hex4(p, end, &cp))
		return NULL;
	p += 4;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return NULL;
	if (cp >= 0xD800 && cp <= 0xDBFF)
	{
		if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
			!read_hex4(p + 2, end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
			return NULL;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	}
	if (cp == 0)
		s->nul_escape = true;
	if (o != NULL)
		buildlog_put_utf8(o, cp);
	return p;
}

/*
 * Scan the string at s->p (a '"'), decoding into out when not NULL (room for
 * the raw length is enough: escapes never grow).  *outlen gets the length.
 */
static bool
scan_string(Scanner *s, char *out, size_t *outlen)
{
	const char *p = s->p + 1;
	const char *end = s->end;
	char	   *o = out;

	for (;;)
	{
		const char *run = p;

		while (p < end && !string_special[(unsigned char) *p])
			p++;
		if (p < end && (unsigned char) *p >= 0x80)
		{
			int			n = buildlog_utf8_sequence((const unsigned char *) p,
												   (const unsigned char *) end);

			if (n < 0)
				return false;	/* invalid UTF-8: jansson refuses it */
			p += n;
			if (o != NULL)
			{
				memcpy(o, run, p - run);
				o += p - run;
			}
			continue;
		}
		if (o != NULL && p > run)
		{
			memcpy(o, run, p - run);
			o += p - run;
		}
		if (p >= end || (unsigned char) *p < 0x20)
			return false;
		if (*p == '"')
			break;
		/* a backslash escape */
		if (++p >= end)
			return false;
		if (*p == 'u')
		{
			p = decode_unicode_escape(s, p + 1, end, o != NULL ? &o : NULL);
			if (p == NULL)
				return false;
			continue;
		}
		{
			char		c;

			switch (*p)
			{
				case '"':
				case '\\':
				case '/':
					c = *p;
					break;
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				default:
					return false;
			}
			if (o != NULL)
				*o++ = c;
			p++;
		}
	}
	if (outlen != NULL)
		*outlen = o - out;
	s->p = p + 1;
	return true;
}

/*
 * Scan a number; *digits_only tells whether it is a plain non-negative
 * integer, then in *value.  False for bad syntax and for numbers jansson may
 * refuse as too big: more than MAX_INT_DIGITS integer digits, or an exponent
 * of more than MAX_EXP_DIGITS digits (below both, |x| < 1e118).
 */
static bool
scan_number(Scanner *s, bool *digits_only, int64 *value)
{
	const char *p = s->p;
	const char *end = s->end;
	const char *int_start;
	bool		frac_or_exp = false;
	bool		negative = false;

	if (p < end && *p == '-')
	{
		negative = true;
		p++;
	}
	int_start = p;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (p - int_start > MAX_INT_DIGITS)
		return false;
	if (p < end && *p == '.')
	{
		const char *f = ++p;

		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == f)
			return false;
		frac_or_exp = true;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		const char *x;

		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		x = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == x || p - x > MAX_EXP_DIGITS)
			return false;
		frac_or_exp = true;
	}
	*digits_only = !negative && !frac_or_exp;
	if (*digits_only)
	{
		int64		v = 0;

		for (const char *d = int_start; d < p; d++)
			v = v * 10 + (*d - '0');
		*value = v;
	}
	s->p = p;
	return true;
}

/* Consume the literal word (true, false, null). */
static bool
scan_literal(Scanner *s, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool skip_value(Scanner *s, int depth);

/* Skip an object or array (s->p at '{' or '['), validating it. */
static bool
skip_container(Scanner *s, int depth)
{
	bool		object = (*s->p == '{');
	char		close = object ? '}' : ']';

	if (depth >= MAX_DEPTH)
		return false;
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close)
	{
		s->p++;
		return true;
	}
	for (;;)
	{
		if (object)
		{
			skip_ws(s);
			s->nul_escape = false;
			if (s->p >= s->end || *s->p != '"' || !scan_string(s, NULL, NULL) ||
				s->nul_escape || !expect(s, ':'))
				return false;	/* jansson refuses NUL in keys */
		}
		if (!skip_value(s, depth + 1))
			return false;
		skip_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close)
		{
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
	}
}

/* Skip any JSON value, validating it. */
static bool
skip_value(Scanner *s, int depth)
{
	bool		digits_only;
	int64		v;

	skip_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p)
	{
		case '"':
			return scan_string(s, NULL, NULL);
		case '{':
		case '[':
			return skip_container(s, depth);
		case 't':
			return scan_literal(s, "true");
		case 'f':
			return scan_literal(s, "false");
		case 'n':
			return scan_literal(s, "null");
		default:
			return scan_number(s, &digits_only, &v);
	}
}

/* Read a value that must be a plain non-negative integer. */
static bool
read_digits(Scanner *s, int64 *value)
{
	bool		digits_only;

	skip_ws(s);
	return scan_number(s, &digits_only, value) && digits_only;
}

/* Read a string value that must be exactly word, written without escapes. */
static bool
read_word(Scanner *s, const char *word)
{
	size_t		n = strlen(word);

	skip_ws(s);
	if ((size_t) (s->end - s->p) < n + 2 || s->p[0] != '"' ||
		memcmp(s->p + 1, word, n) != 0 || s->p[n + 1] != '"')
		return false;
	s->p += n + 2;
	return true;
}

/* Read "log": a string decoded into a text-ready buffer, or null. */
static bool
read_log(Scanner *s, ScannedMessage *m)
{
	char	   *buf;

	skip_ws(s);
	if (scan_literal(s, "null"))
		return true;
	if (s->p >= s->end || *s->p != '"')
		return false;
	/* the decoded string is never longer than the rest of the body */
	buf = palloc_extended(VARHDRSZ + (s->end - s->p) + 1,
						  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (buf == NULL)
		return false;
	s->nul_escape = false;
	if (!scan_string(s, buf + VARHDRSZ, &m->loglen))
	{
		pfree(buf);
		return false;
	}
	m->log_clean = !s->nul_escape;
	if (m->log != NULL)
		pfree(m->log);
	m->log = buf;
	return true;
}

/* Fields the scanner reads; each may appear once. */
typedef enum Field
{
	F_OTHER = 0, F_ID = 1, F_NUMBER = 2, F_FINAL = 4, F_LOG = 8, F_ENCODING = 16
} Field;

/* Which field the plain (escape-free) key at [k, k+n) names. */
static Field
field_of(const char *k, size_t n)
{
#define IS(word) (n == sizeof(word) - 1 && memcmp(k, word, n) == 0)
	if (IS("id"))
		return F_ID;
	if (IS("number"))
		return F_NUMBER;
	if (IS("final"))
		return F_FINAL;
	if (IS("log"))
		return F_LOG;
	if (IS("encoding"))
		return F_ENCODING;
	return F_OTHER;
#undef IS
}

/* Read one member's value into *m. */
static bool
read_member(Scanner *s, Field f, ScannedMessage *m)
{
	switch (f)
	{
		case F_ID:
			return read_digits(s, &m->job_id);
		case F_NUMBER:
			skip_ws(s);
			if (s->p < s->end && *s->p == '"')
			{
				m->number = BUILDLOG_LAST_NUMBER;
				return read_word(s, "last");
			}
			return read_digits(s, &m->number);
		case F_FINAL:
			skip_ws(s);
			if (scan_literal(s, "true"))
				m->final = true;
			else if (!scan_literal(s, "false") && !scan_literal(s, "null"))
				return false;
			return true;
		case F_LOG:
			return read_log(s, m);
		case F_ENCODING:
			skip_ws(s);
			if (scan_literal(s, "null"))
				return true;
			m->base64 = true;
			return read_word(s, "base64");
		case F_OTHER:
			return skip_value(s, 1);
	}
	return false;
}

bool
buildlog_scan_message(const char *body, size_t len, ScannedMessage *m)
{
	Scanner		s = {body, body + len, false};
	int			seen = 0;

	if (!tables_ready)
		init_tables();
	memset(m, 0, sizeof(*m));
	if (!expect(&s, '{'))
		return false;
	skip_ws(&s);
	if (s.p < s.end && *s.p == '}')
		return false;			/* {}: jansson's path words "missing id" */
	for (;;)
	{
		const char *key;
		const char *close;
		Field		f;

		skip_ws(&s);
		if (s.p >= s.end || *s.p != '"')
			return false;
		key = s.p + 1;
		if (!scan_string(&s, NULL, NULL))
			return false;
		close = s.p - 1;
		if (memchr(key, '\\', close - key) != NULL)
			return false;		/* escaped keys: jansson decides */
		f = field_of(key, close - key);
		if (f != F_OTHER && (seen & f))
			return false;		/* duplicates: jansson keeps the last */
		seen |= f;
		if (!expect(&s, ':') || !read_member(&s, f, m))
			return false;
		skip_ws(&s);
		if (s.p < s.end && *s.p == ',')
		{
			s.p++;
			continue;
		}
		if (!expect(&s, '}'))
			return false;
		break;
	}
	skip_ws(&s);
	return s.p == s.end && (seen & F_ID) && (seen & F_NUMBER);
}
