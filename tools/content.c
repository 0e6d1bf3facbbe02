/*
 * content.c - the content generator of tools/publish: build-log-like text
 * (see content.h), derived from the seed only.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "content.h"

static content_opts_t cfg;		/* what content_init was given */

/* per-part decision hash: stable for (seed, job id, number, salt) */
uint64_t
hash3(long long job, long long number, int salt)
{
	return mix64(mix64(mix64(cfg.seed ^ (uint64_t) salt) ^ (uint64_t) job) ^ (uint64_t) number);
}

/* ---------------------------------------------------- buffers, encoders */

/* room for extra more bytes in b */
void
buf_reserve(buf_t *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	while (b->len + extra > b->cap)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		die("out of memory");
}

/* append n bytes to b */
void
buf_add(buf_t *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/* append printf output to b */
void
buf_printf(buf_t *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, (size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

/*
 * JSON string body (without quotes), escaped the way Go's encoding/json does
 * it (travis-worker is Go): \" \\ \n \r \t, other controls (ESC!) as \u00XX,
 * and < > & as \u003c \u003e \u0026.  Bytes >= 0x80 are copied as they are.
 */
void
json_escape(buf_t *b, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i;
	char	   *o;

	buf_reserve(b, n * 6);
	o = b->p + b->len;
	for (i = 0; i < n; i++)
	{
		unsigned char c = s[i];

		switch (c)
		{
			case '"':
				*o++ = '\\';
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				*o++ = '\\';
				break;
			case '\n':
				*o++ = '\\';
				*o++ = 'n';
				break;
			case '\r':
				*o++ = '\\';
				*o++ = 'r';
				break;
			case '\t':
				*o++ = '\\';
				*o++ = 't';
				break;
			default:
				if (c < 0x20 || c == '<' || c == '>' || c == '&')
				{
					*o++ = '\\';
					*o++ = 'u';
					*o++ = '0';
					*o++ = '0';
					*o++ = hex[c >> 4];
					*o++ = hex[c & 15];
				}
				else
					*o++ = (char) c;
		}
	}
	b->len = (size_t) (o - b->p);
}

/* append the standard base64 (with padding) of s[0..n) to b */
void
base64_encode(buf_t *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		i;
	char	   *o;

	buf_reserve(b, (n + 2) / 3 * 4);
	o = b->p + b->len;
	for (i = 0; i + 2 < n; i += 3)
	{
		uint32_t	v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8 | s[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < n)
	{
		uint32_t	v = (uint32_t) s[i] << 16 | (i + 1 < n ? (uint32_t) s[i + 1] << 8 : 0);

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	b->len = (size_t) (o - b->p);
}

/* ------------------------------------------------------------ log content */

/*
 * A pool of build-log-like text (ANSI colours, \r\n, travis_fold/time
 * markers, quotes, backslashes, tabs, < > &, and some valid multi-byte
 * UTF-8) generated once from the seed.  A part's content is a slice of the
 * pool at an offset derived from (seed, job, number), cut at UTF-8 character
 * boundaries, so it is always valid UTF-8 and exactly `size` bytes.
 */
static unsigned char *pool;
static size_t pool_len;

static const char *const gems[] = {
	"rake", "rack", "rspec-core", "nokogiri", "json", "activesupport",
	"bundler", "minitest", "puma", "sidekiq", "pg", "aws-sdk-s3"
};
static const char *const words[] = {
	"parser", "render", "cache", "login", "upload", "retry", "shard", "drain"
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* one random line of build output (one of 16 kinds) appended to b */
static void
pool_line(buf_t *b, rng_t *r)
{
	const char *g = gems[rng_below(r, NELEM(gems))];
	const char *w = words[rng_below(r, NELEM(words))];
	unsigned	x = (unsigned) rng_next(r);
	int			a = (int) rng_below(r, 10),
				c = (int) rng_below(r, 30),
				d = (int) rng_below(r, 300);
	unsigned long long t0 = 1600000000000000000ULL + rng_below(r, 1000000000000000ULL);
	int			i,
				n;

	switch (rng_below(r, 16))
	{
		case 0:
			buf_printf(b, "$ bundle install --jobs=3 --retry=3 --deployment --path=${BUNDLE_PATH:-vendor/bundle}\r\n");
			break;
		case 1:
		case 2:
			buf_printf(b, "Installing %s %d.%d.%d%s\r\n", g, a, c, d,
					   (x & 3) == 0 ? " with native extensions" : "");
			break;
		case 3:
			buf_printf(b, "Using %s %d.%d.%d\r\n", g, a, c, d);
			break;
		case 4:
			buf_printf(b, "\x1b[0K\x1b[33;1mSetting environment variables from .travis.yml\x1b[0m\r\n");
			break;
		case 5:
			buf_printf(b, "travis_fold:start:%s.%d\r\x1b[0Ktravis_time:start:%08x\r\x1b[0K$ bundle exec rake %s\r\n",
					   w, a, x, w);
			break;
		case 6:
			buf_printf(b, "\r\ntravis_time:end:%08x:start=%llu,finish=%llu,duration=%llu,event=%s\r\x1b[0Ktravis_fold:end:%s.%d\r\x1b[0K\r\n",
					   x, t0, t0 + (unsigned long long) d * 1000003ULL,
					   (unsigned long long) d * 1000003ULL, w, w, a);
			break;
		case 7:
			n = 10 + (int) rng_below(r, 50);
			for (i = 0; i < n; i++)
				buf_add(b, rng_below(r, 40) ? "\x1b[32m.\x1b[0m" : "\x1b[31mF\x1b[0m", 10);
			buf_printf(b, "\r\n");
			break;
		case 8:
			buf_printf(b, "  %d) Failure:\r\nFooTest#test_%s [C:\\projects\\app\\test\\%s_test.rb:%d]:\r\nExpected \"%s\" to equal \"%s-%d\".\r\n",
					   a + 1, w, w, d, g, w, c);
			break;
		case 9:
			buf_printf(b, "\tat org.example.%s.Runner.run(Runner.java:%d)\r\n", w, d);
			break;
		case 10:
			buf_printf(b, "  \xe2\x9c\x93 renders <div class=\"%s\"> & escapes entities (%d ms)\r\n", w, d);
			break;
		case 11:
			buf_printf(b, "npm WARN deprecated %s@%d.%d.%d: caf\xc3\xa9 \xe2\x80\x94 use %s instead\r\n", w, a, c, d, g);
			break;
		case 12:
			for (i = 0; i <= 100; i += 20 + (int) rng_below(r, 30))
				buf_printf(b, "Downloading %s-%d.%d.%d.gem... %d%%\r", g, a, c, d, i);
			buf_printf(b, "Downloading %s-%d.%d.%d.gem... 100%%\r\n", g, a, c, d);
			break;
		case 13:
			buf_printf(b, "\x1b[31;1mThe command \"bundle exec rake %s\" exited with %d.\x1b[0m\r\n", w, a & 1);
			break;
		case 14:
			buf_printf(b, "%d examples, %d failures, %d pending\r\n\r\n", d * 7, a, c);
			break;
		default:
			buf_printf(b, "\x1b[1m\x1b[36m==>\x1b[0m \x1b[1mRunning %s tests on \xf0\x9f\x90\xa7 linux (worker %08x)\x1b[0m\r\n", w, x);
			break;
	}
}

/* remember the options, generate the pool */
void
content_init(const content_opts_t *o)
{
	buf_t		b = {0};
	rng_t		r;
	size_t		want;

	cfg = *o;
	r.s = cfg.seed ^ mix64(SALT_POOL);
	want = (size_t) cfg.size * 2 + 4096;
	if (want < (1u << 20))
		want = 1u << 20;
	buf_printf(&b, "Worker information\r\nhostname: buildlog-bench\r\nversion: v6.2.0 https://github.com/travis-ci/worker\r\n");
	while (b.len < want)
		pool_line(&b, &r);
	pool = (unsigned char *) b.p;
	pool_len = b.len;
}

/* make s[0..n) end on a character boundary: an incomplete last char -> '.' */
static void
fix_tail(unsigned char *s, size_t n)
{
	size_t		i,
				need;

	if (n == 0)
		return;
	i = n - 1;
	while (i > 0 && (s[i] & 0xC0) == 0x80 && n - i < 4)
		i--;
	need = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : s[i] >= 0xC0 ? 2 : 1;
	if ((s[i] & 0xC0) == 0x80)
		need = 4;				/* stray continuation bytes: replace them */
	if (i + need > n)
		memset(s + i, '.', n - i);
}

/* does part (job, number) get raw 0xFF bytes (--invalid-utf8)? */
int
part_has_invalid(long long job, long number)
{
	size_t		prefix = cfg.timestamp ? TS_PREFIX_LEN : 0;

	return cfg.invalid_utf8 > 0 && (size_t) cfg.size > prefix &&
		unit(hash3(job, number, SALT_BAD)) < cfg.invalid_utf8;
}

/*
 * The content bytes of part (job, number), exactly cfg.size bytes, into out.
 * ts is the publish time in microseconds (used with --timestamp).  Invalid
 * UTF-8 injections are single 0xFF bytes replacing ASCII bytes after the
 * timestamp prefix, so each one becomes exactly one U+FFFD when cleaned.
 */
void
part_content(long long job, long number, long long ts, unsigned char *out)
{
	size_t		size = (size_t) cfg.size;
	size_t		prefix = 0;
	size_t		off;

	if (size == 0)
		return;
	off = hash3(job, number, SALT_OFF) % (pool_len - size - 4);
	while ((pool[off] & 0xC0) == 0x80)
		off++;
	memcpy(out, pool + off, size);
	fix_tail(out, size);
	if (cfg.timestamp)
	{
		char		tmp[32];
		size_t		i;

		snprintf(tmp, sizeof tmp, "T%016lld ", ts);
		memcpy(out, tmp, TS_PREFIX_LEN);
		for (i = TS_PREFIX_LEN; i < size && (out[i] & 0xC0) == 0x80; i++)
			out[i] = '.';
		prefix = TS_PREFIX_LEN;
	}
	if (part_has_invalid(job, number))
	{
		uint64_t	h = hash3(job, number, SALT_BADPOS);
		int			k = 1 + (int) (h % 3);
		int			injected = 0;
		int			tries;

		for (tries = 0; tries < 64 && injected < k; tries++)
		{
			size_t		pos;

			h = mix64(h);
			pos = prefix + h % (size - prefix);
			if (out[pos] < 0x80)
			{
				out[pos] = 0xFF;
				injected++;
			}
		}
	}
}

/* the uuid of part (job, number): a version-4 form derived from the seed */
void
make_uuid(char *out, long long job, long long number)
{
	uint64_t	a = hash3(job, number, SALT_UUID),
				b = mix64(a);

	snprintf(out, 37, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
			 (uint32_t) (a >> 32), (uint32_t) (a >> 16) & 0xffff,
			 (uint32_t) a & 0xfff, (uint32_t) ((b >> 48) & 0x3fff) | 0x8000,
			 (uint64_t) (b & 0xffffffffffffULL));
}

/*
 * n bytes of the pool repeated, cut at a character boundary: the content of
 * the oversized malformed part.
 */
void
content_fill(unsigned char *out, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i += pool_len)
		memcpy(out + i, pool, n - i < pool_len ? n - i : pool_len);
	fix_tail(out, n);
}
