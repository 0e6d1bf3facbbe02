/*-------------------------------------------------------------------------
 * mask.c
 *	  The masking engine: secrets and their encodings found in one pass.
 *
 * Every pattern is at least MASK_SECRET_MIN_LEN bytes long.  The scan
 * reads, at each position of the text, the next w bytes (w = the shortest
 * pattern, at most 8) as one word and hashes it to 16 bits: a bit map says
 * whether any pattern starts with such a word (most positions stop there),
 * and only then are the patterns of its chain (of 4096) compared.  One pass
 * over the text, about the same cost for 1 secret as for 100.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mask.h"

#define MASK_HASH_BITS 12
#define MASK_HASH_SIZE (1 << MASK_HASH_BITS)
#define MASK_FILTER_BITS 16		/* a bit per 16-bit hash: most misses stop there */

struct MaskSet
{
	int			npatterns;
	char	  **patterns;
	int		   *lens;
	int		   *next;			/* chain of patterns with the same hash */
	int			heads[MASK_HASH_SIZE];	/* first pattern of each chain, -1 */
	uint8		filter[(1 << MASK_FILTER_BITS) / 8];	/* some pattern has this hash */
	int			w;				/* bytes hashed per position */
	uint64		wmask;			/* keeps the low w bytes of a word */
	int			max_len;
};

static const char base64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The first w bytes at p as a word (the same value for text and pattern). */
static inline uint64
word_at(const char *p, int w, uint64 wmask, bool full)
{
	uint64		k = 0;

#ifndef WORDS_BIGENDIAN
	if (full)
	{
		memcpy(&k, p, 8);
		return k & wmask;
	}
#endif
	for (int i = 0; i < w; i++)
		k |= ((uint64) (unsigned char) p[i]) << (8 * i);
	return k;
}

/* 16-bit hash of a word: its filter bit; its top bits pick the chain. */
static inline int
word_hash(uint64 k)
{
	return (int) ((k * UINT64CONST(0x9E3779B97F4A7C15)) >> (64 - MASK_FILTER_BITS));
}

#define CHAIN_OF(h) ((h) >> (MASK_FILTER_BITS - MASK_HASH_BITS))

/* The URL encoding of s (RFC 3986 unreserved bytes kept); NULL if unchanged. */
static char *
url_encoded(const char *s, int len, int *outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *out = palloc(len * 3 + 1);
	int			o = 0;

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~')
			out[o++] = c;
		else
		{
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	*outlen = o;
	if (o == len)
	{
		pfree(out);
		return NULL;
	}
	return out;
}

/*
 * The base64 characters that depend on s alone when s starts at byte
 * "offset" (0-2) of a 3-byte group: what any base64 text containing s at
 * that alignment contains, whatever surrounds it.
 */
static char *
base64_aligned(const char *s, int len, int offset, int *outlen)
{
	int			total = offset + len;
	int			groups = (total + 2) / 3;
	unsigned char *buf = palloc0(groups * 3);
	char	   *enc = palloc(groups * 4 + 1);
	int			first = (8 * offset + 5) / 6;	/* ceil(8 offset / 6) */
	int			last = (8 * total) / 6; /* exclusive */

	memcpy(buf + offset, s, len);
	for (int g = 0; g < groups; g++)
	{
		uint32		v = (buf[3 * g] << 16) | (buf[3 * g + 1] << 8) | buf[3 * g + 2];

		enc[4 * g] = base64_alphabet[(v >> 18) & 63];
		enc[4 * g + 1] = base64_alphabet[(v >> 12) & 63];
		enc[4 * g + 2] = base64_alphabet[(v >> 6) & 63];
		enc[4 * g + 3] = base64_alphabet[v & 63];
	}
	pfree(buf);
	*outlen = last - first;
	memmove(enc, enc + first, *outlen);
	return enc;
}

/* Append one pattern (kept by reference) if it is long enough. */
static void
add_pattern(MaskSet *set, int *cap, char *p, int len)
{
	if (len < MASK_SECRET_MIN_LEN)
		return;
	if (set->npatterns == *cap)
	{
		*cap *= 2;
		set->patterns = repalloc(set->patterns, sizeof(char *) * *cap);
		set->lens = repalloc(set->lens, sizeof(int) * *cap);
	}
	set->patterns[set->npatterns] = p;
	set->lens[set->npatterns] = len;
	set->npatterns++;
}

MaskSet *
buildlog_mask_compile(const char *const *values, const int *lens, int n)
{
	MaskSet    *set = palloc0(sizeof(MaskSet));
	int			cap = Max(5 * n, 1);
	int			min_len = PG_INT32_MAX;

	set->patterns = palloc(sizeof(char *) * cap);
	set->lens = palloc(sizeof(int) * cap);
	for (int i = 0; i < n; i++)
	{
		char	   *enc;
		int			elen;

		add_pattern(set, &cap, pnstrdup(values[i], lens[i]), lens[i]);
		if ((enc = url_encoded(values[i], lens[i], &elen)) != NULL)
			add_pattern(set, &cap, enc, elen);
		for (int offset = 0; offset < 3; offset++)
		{
			enc = base64_aligned(values[i], lens[i], offset, &elen);
			add_pattern(set, &cap, enc, elen);
		}
	}
	for (int i = 0; i < set->npatterns; i++)
	{
		min_len = Min(min_len, set->lens[i]);
		set->max_len = Max(set->max_len, set->lens[i]);
	}
	set->w = set->npatterns > 0 ? Min(min_len, 8) : 8;
	set->wmask = set->w == 8 ? ~UINT64CONST(0) : ((UINT64CONST(1) << (8 * set->w)) - 1);
	set->next = palloc(sizeof(int) * Max(set->npatterns, 1));
	for (int h = 0; h < MASK_HASH_SIZE; h++)
		set->heads[h] = -1;
	for (int i = 0; i < set->npatterns; i++)
	{
		int			h = word_hash(word_at(set->patterns[i], set->w, set->wmask, false));

		set->filter[h >> 3] |= 1 << (h & 7);
		set->next[i] = set->heads[CHAIN_OF(h)];
		set->heads[CHAIN_OF(h)] = i;
	}
	return set;
}

int
buildlog_mask_max_len(const MaskSet *set)
{
	return set ? set->max_len : 0;
}

int
buildlog_mask_find(const MaskSet *set, const char *text, int32 len, MaskSpan **spans)
{
	int			cap = 8;
	int			n = 0;
	MaskSpan   *out = NULL;

	*spans = NULL;
	if (set == NULL || set->npatterns == 0)
		return 0;
	for (int32 i = 0; i + set->w <= len; i++)
	{
		uint64		k = word_at(text + i, set->w, set->wmask, i + 8 <= len);
		int			h = word_hash(k);
		int32		end = -1;

		if (!(set->filter[h >> 3] & (1 << (h & 7))))
			continue;
		for (int p = set->heads[CHAIN_OF(h)]; p >= 0; p = set->next[p])
			if (set->lens[p] <= len - i && i + set->lens[p] > end &&
				memcmp(text + i, set->patterns[p], set->lens[p]) == 0)
				end = i + set->lens[p];
		if (end < 0)
			continue;
		if (n > 0 && i < out[n - 1].end)
		{
			out[n - 1].end = Max(out[n - 1].end, end);
			continue;
		}
		if (out == NULL)
			out = palloc(sizeof(MaskSpan) * cap);
		else if (n == cap)
		{
			cap *= 2;
			out = repalloc(out, sizeof(MaskSpan) * cap);
		}
		out[n].start = i;
		out[n].end = end;
		n++;
	}
	*spans = out;
	return n;
}

/* Order spans by start. */
static int
cmp_spans(const void *a, const void *b)
{
	const MaskSpan *x = a;
	const MaskSpan *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

int
buildlog_mask_join(MaskSpan *spans, int n)
{
	int			m = 0;

	if (n > 1)
		qsort(spans, n, sizeof(MaskSpan), cmp_spans);
	for (int i = 0; i < n; i++)
	{
		if (spans[i].end <= spans[i].start)
			continue;
		if (m > 0 && spans[i].start < spans[m - 1].end)
			spans[m - 1].end = Max(spans[m - 1].end, spans[i].end);
		else
			spans[m++] = spans[i];
	}
	return m;
}

char *
buildlog_mask_apply(const char *text, int32 len, const MaskSpan *spans, int n,
					int32 *outlen)
{
	char	   *out = palloc(len + MASK_REPLACEMENT_LEN * n + 1);
	int32		o = 0;
	int32		from = 0;

	for (int i = 0; i < n; i++)
	{
		memcpy(out + o, text + from, spans[i].start - from);
		o += spans[i].start - from;
		memcpy(out + o, MASK_REPLACEMENT, MASK_REPLACEMENT_LEN);
		o += MASK_REPLACEMENT_LEN;
		from = spans[i].end;
	}
	memcpy(out + o, text + from, len - from);
	o += len - from;
	out[o] = '\0';
	*outlen = o;
	return out;
}

int32
buildlog_mask_remap(int32 off, const MaskSpan *spans, int n)
{
	int32		shift = 0;

	for (int i = 0; i < n && spans[i].start < off; i++)
	{
		int32		len = spans[i].end - spans[i].start;

		if (off < spans[i].end)
			/* inside a masked span: the boundary moves past its "***" */
			return spans[i].start - shift + MASK_REPLACEMENT_LEN;
		shift += len - MASK_REPLACEMENT_LEN;
	}
	return off - shift;
}

int
buildlog_mask_commands(const char *text, int32 len, MaskSpan **values)
{
	const char *p = text;
	const char *end = text + len;
	int			n = 0;
	int			cap = 0;

	*values = NULL;
	while (p < end && (p = memmem(p, end - p, MASK_COMMAND, MASK_COMMAND_LEN)) != NULL)
	{
		const char *b = p;
		const char *v = p + MASK_COMMAND_LEN;
		const char *e = v;

		p = v;
		/* a workflow command starts its line (after blanks) */
		while (b > text && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > text && b[-1] != '\n' && b[-1] != '\r')
			continue;
		while (e < end && *e != '\n' && *e != '\r')
			e++;
		p = e;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == v)
			continue;
		if (n == cap)
		{
			cap = Max(cap * 2, 4);
			*values = *values ? repalloc(*values, sizeof(MaskSpan) * cap)
				: palloc(sizeof(MaskSpan) * cap);
		}
		(*values)[n].start = v - text;
		(*values)[n].end = e - text;
		n++;
	}
	return n;
}
