/*-------------------------------------------------------------------------
 * wire_ref.c
 *	  Reference parser of the wire format (see wire_ref.h).
 *
 * Written to be obviously right rather than fast: a lexer for the RFC 8259
 * tokens and an iterative loop over containers whose only memory is one bit
 * per open container (object or array).  jansson used to play this part; it
 * could not represent what we must ignore (numbers beyond a double, lone
 * surrogates, NUL in keys) and rejected good parts for it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utf8.h"

#include "wire_ref.h"

#define INLINE_DEPTH_BYTES 64	/* 512 levels before the first allocation */
#define MAX_FIELD_KEY_RAW 64	/* a longer raw key cannot decode to a field name */

typedef struct Parser
{
	const char *body;
	const char *p;
	const char *end;
	char	   *reason;
	size_t		reasonlen;
	uint8	   *stack;			/* bit d set: container d is an object */
	size_t		capacity;		/* in bits */
	size_t		depth;
	uint8		inline_stack[INLINE_DEPTH_BYTES];
} Parser;

/* Record an error at byte offset at; always false. */
static bool
fail_at(Parser *ps, const char *at, const char *what)
{
	snprintf(ps->reason, ps->reasonlen, "%s at offset %zu", what,
			 (size_t) (at - ps->body));
	return false;
}

/* Record "unexpected ..." for whatever is at ps->p; always false. */
static bool
unexpected(Parser *ps)
{
	char		what[64];
	unsigned char c;

	if (ps->p >= ps->end)
		return fail_at(ps, ps->p, "unexpected end of input");
	c = (unsigned char) *ps->p;
	if (c > 0x20 && c < 0x7F)
		snprintf(what, sizeof(what), "unexpected character '%c'", c);
	else
		snprintf(what, sizeof(what), "unexpected byte 0x%02X", c);
	return fail_at(ps, ps->p, what);
}

/* Skip JSON whitespace (space, tab, LF, CR; nothing else). */
static void
skip_ws(Parser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* Value of a hex digit, -1 for anything else. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Lex the string at ps->p (a '"'); on success ps->p is after the closing
 * quote and [*text, *text + *len) is the raw text between the quotes.
 */
static bool
lex_string(Parser *ps, const char **text, size_t *len)
{
	const char *open = ps->p;
	const char *p = open + 1;

	for (;;)
	{
		unsigned char c;

		if (p >= ps->end)
			return fail_at(ps, open, "unterminated string starting");
		c = (unsigned char) *p;
		if (c == '"')
			break;
		if (c == '\\')
		{
			if (p + 1 >= ps->end)
				return fail_at(ps, open, "unterminated string starting");
			switch (p[1])
			{
				case '"':
				case '\\':
				case '/':
				case 'b':
				case 'f':
				case 'n':
				case 'r':
				case 't':
					p += 2;
					continue;
				case 'u':
					if (ps->end - p < 6 || hex_value(p[2]) < 0 || hex_value(p[3]) < 0 ||
						hex_value(p[4]) < 0 || hex_value(p[5]) < 0)
						return fail_at(ps, p, "invalid \\u escape");
					p += 6;
					continue;
				default:
					{
						char		what[64];
						unsigned char e = (unsigned char) p[1];

						if (e > 0x20 && e < 0x7F)
							snprintf(what, sizeof(what), "invalid escape '\\%c'", e);
						else
							snprintf(what, sizeof(what), "invalid escape '\\' + byte 0x%02X", e);
						return fail_at(ps, p, what);
					}
			}
		}
		if (c < 0x20 && c != 0)
		{
			char		what[64];

			snprintf(what, sizeof(what), "control character 0x%02X in a string", c);
			return fail_at(ps, p, what);
		}
		p++;					/* NUL and bytes >= 0x80: cleaned later */
	}
	*text = open + 1;
	*len = p - (open + 1);
	ps->p = p + 1;
	return true;
}

/* Consume a run of digits; false when there is none. */
static bool
lex_digits(Parser *ps)
{
	const char *start = ps->p;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > start;
}

/* Lex a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, any size. */
static bool
lex_number(Parser *ps)
{
	const char *start = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (!(ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') || !lex_digits(ps))
		return fail_at(ps, start, "invalid number");
	if (ps->p < ps->end && *ps->p == '.')
	{
		ps->p++;
		if (!lex_digits(ps))
			return fail_at(ps, start, "invalid number");
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E'))
	{
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!lex_digits(ps))
			return fail_at(ps, start, "invalid number");
	}
	return true;
}

/* Consume the literal word; false (unexpected) when it is not there. */
static bool
lex_literal(Parser *ps, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return unexpected(ps);
	ps->p += n;
	return true;
}

/* Open a container: one more bit on the stack, grown by doubling. */
static bool
push(Parser *ps, bool object)
{
	if (ps->depth == ps->capacity)
	{
		size_t		bytes = ps->capacity / 8 * 2;
		uint8	   *grown = palloc_extended(bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

		if (grown == NULL)
			return fail_at(ps, ps->p, "nesting too deep for the memory available");
		memcpy(grown, ps->stack, ps->capacity / 8);
		if (ps->stack != ps->inline_stack)
			pfree(ps->stack);
		ps->stack = grown;
		ps->capacity = bytes * 8;
	}
	if (object)
		ps->stack[ps->depth / 8] |= (uint8) (1 << (ps->depth % 8));
	else
		ps->stack[ps->depth / 8] &= (uint8) ~(1 << (ps->depth % 8));
	ps->depth++;
	return true;
}

/* Is the innermost open container an object? */
static bool
in_object(Parser *ps)
{
	size_t		d = ps->depth - 1;

	return (ps->stack[d / 8] >> (d % 8)) & 1;
}

/* Which field a top-level key names (compared after unescaping), or -1. */
static int
field_of_key(const char *raw, size_t len)
{
	static const char *const names[WF_COUNT] = {"id", "number", "final", "log", "encoding"};
	char		key[MAX_FIELD_KEY_RAW];
	size_t		n;
	int			lone;

	if (len > MAX_FIELD_KEY_RAW)
		return -1;
	n = buildlog_wire_unescape(raw, len, key, &lone);
	for (int f = 0; f < WF_COUNT; f++)
		if (strlen(names[f]) == n && memcmp(names[f], key, n) == 0)
			return f;
	return -1;
}

/*
 * Lex one value at ps->p.  Scalars are consumed; for '{' and '[' only the
 * bracket is (the caller pushes).  *kind and the raw span are set.
 */
static bool
lex_value(Parser *ps, WireValue *v)
{
	const char *start = ps->p;

	if (ps->p >= ps->end)
		return unexpected(ps);
	v->start = start;
	switch (*ps->p)
	{
		case '"':
			v->kind = WK_STRING;
			return lex_string(ps, &v->start, &v->len);
		case '{':
			v->kind = WK_OBJECT;
			ps->p++;
			break;
		case '[':
			v->kind = WK_ARRAY;
			ps->p++;
			break;
			/* the three literals alike on purpose: one case each reads plainest */
		case 't':
			v->kind = WK_TRUE;
			if (!lex_literal(ps, "true"))
				return false;
			break;
		case 'f':
			v->kind = WK_FALSE;
			if (!lex_literal(ps, "false"))
				return false;
			break;
		case 'n':
			v->kind = WK_NULL;
			if (!lex_literal(ps, "null"))
				return false;
			break;
		default:
			if (*ps->p != '-' && !(*ps->p >= '0' && *ps->p <= '9'))
				return unexpected(ps);
			v->kind = WK_NUMBER;
			if (!lex_number(ps))
				return false;
			break;
	}
	v->len = ps->p - start;
	return true;
}

/*
 * Read a key and its colon inside an object; *field is the field it names
 * when the object is the top-level one, else -1.
 */
static bool
lex_key(Parser *ps, int *field)
{
	const char *text;
	size_t		len;

	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '"')
		return unexpected(ps);
	if (!lex_string(ps, &text, &len))
		return false;
	*field = (ps->depth == 1) ? field_of_key(text, len) : -1;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':')
		return unexpected(ps);
	ps->p++;
	return true;
}

/* The loop over values and containers; see buildlog_wire_parse. */
static bool
parse_body(Parser *ps, WireMessage *m)
{
	int			field = -1;

	for (;;)
	{
		WireValue	v;

		/* a value is expected at ps->p */
		skip_ws(ps);
		if (!lex_value(ps, &v))
			return false;
		if (ps->depth == 0)
			m->object = (v.kind == WK_OBJECT);
		else if (ps->depth == 1 && field >= 0)
			m->field[field] = v;
		field = -1;
		if (v.kind == WK_OBJECT || v.kind == WK_ARRAY)
		{
			if (!push(ps, v.kind == WK_OBJECT))
				return false;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == (v.kind == WK_OBJECT ? '}' : ']'))
			{
				ps->p++;
				ps->depth--;
			}
			else if (v.kind == WK_OBJECT)
			{
				if (!lex_key(ps, &field))
					return false;
				continue;
			}
			else
				continue;
		}

		/* after a complete value: a comma, closing brackets, or the end */
		for (;;)
		{
			if (ps->depth == 0)
			{
				skip_ws(ps);
				if (ps->p < ps->end)
					return fail_at(ps, ps->p, "unexpected data after the JSON value");
				return true;
			}
			skip_ws(ps);
			if (ps->p >= ps->end)
				return unexpected(ps);
			if (*ps->p == ',')
			{
				ps->p++;
				if (in_object(ps) && !lex_key(ps, &field))
					return false;
				break;
			}
			if (*ps->p != (in_object(ps) ? '}' : ']'))
				return unexpected(ps);
			ps->p++;
			ps->depth--;
		}
	}
}

bool
buildlog_wire_parse(const char *body, size_t len, WireMessage *m,
					char *reason, size_t reasonlen)
{
	Parser		ps;
	bool		ok;

	memset(m, 0, sizeof(*m));
	ps.body = body;
	ps.p = body;
	ps.end = body + len;
	ps.reason = reason;
	ps.reasonlen = reasonlen;
	ps.stack = ps.inline_stack;
	ps.capacity = INLINE_DEPTH_BYTES * 8;
	ps.depth = 0;
	/* RFC 8259 section 8.1: a parser may ignore a leading byte order mark */
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;
	ok = parse_body(&ps, m);
	if (ps.stack != ps.inline_stack)
		pfree(ps.stack);
	return ok;
}

/* The 4 hex digits at p (already validated by the lexer). */
static unsigned int
hex4(const char *p)
{
	return (hex_value(p[0]) << 12) | (hex_value(p[1]) << 8) |
		(hex_value(p[2]) << 4) | hex_value(p[3]);
}

size_t
buildlog_wire_unescape(const char *s, size_t len, char *out, int *lone)
{
	const char *end = s + len;
	char	   *o = out;

	*lone = 0;
	while (s < end)
	{
		unsigned int cp;

		if (*s != '\\')
		{
			*o++ = *s++;
			continue;
		}
		switch (s[1])
		{
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				cp = hex4(s + 2);
				s += 6;
				if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 &&
					s[0] == '\\' && s[1] == 'u' &&
					hex4(s + 2) >= 0xDC00 && hex4(s + 2) <= 0xDFFF)
				{
					cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(s + 2) - 0xDC00);
					s += 6;
				}
				else if (cp >= 0xD800 && cp <= 0xDFFF)
				{
					cp = 0xFFFD;	/* a lone surrogate */
					(*lone)++;
				}
				buildlog_put_utf8(&o, cp);
				continue;
			default:			/* " \ / */
				*o++ = s[1];
				break;
		}
		s += 2;
	}
	return o - out;
}

bool
buildlog_wire_integer(const WireValue *v, int64 min, int64 max, int64 *value)
{
	const char *p = v->start;
	const char *end = v->start + v->len;
	bool		negative = false;
	uint64		magnitude = 0;

	if (v->kind != WK_NUMBER)
		return false;
	if (p < end && *p == '-')
	{
		negative = true;
		p++;
	}
	for (; p < end; p++)
	{
		if (*p < '0' || *p > '9')
			return false;		/* a fraction or an exponent */
		if (magnitude > ((uint64) PG_INT64_MAX - (*p - '0')) / 10)
			return false;		/* beyond int64: beyond any range we accept */
		magnitude = magnitude * 10 + (*p - '0');
	}
	*value = negative ? -(int64) magnitude : (int64) magnitude;
	return *value >= min && *value <= max;
}
