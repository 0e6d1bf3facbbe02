/*
 * content.h - the content generator of tools/publish: a pool of
 * build-log-like text (ANSI colours, \r\n, travis_fold/time markers, quotes,
 * backslashes, tabs, < > &, valid multi-byte UTF-8) from which every part's
 * content is cut, the JSON string and base64 encoders of the message bodies,
 * and the seeded randomness all of it derives from.  The same seed and
 * options give the same bytes.
 */
#ifndef TOOLS_CONTENT_H
#define TOOLS_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#define TS_PREFIX_LEN 18		/* "T" + 16 digits + " " */

/* what the content depends on (publish's load options) */
typedef struct
{
	uint64_t	seed;			/* --seed */
	long		size;			/* content bytes per part (--size) */
	int			timestamp;		/* parts start with "T%016lld " (--timestamp) */
	double		invalid_utf8;	/* fraction of parts with raw 0xFF bytes */
}			content_opts_t;

/* salts of hash3: one per independent decision */
enum
{
	SALT_DUP = 1, SALT_B64, SALT_BAD, SALT_OFF, SALT_UUID, SALT_EXTRA,
	SALT_BADPOS, SALT_ORDER, SALT_POOL, SALT_SCHED
};

/* splitmix64: the only source of randomness; everything derives from --seed */
static inline uint64_t
mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* a hash as a number in [0, 1) */
static inline double
unit(uint64_t h)
{
	return (double) (h >> 11) * 0x1.0p-53;
}

/* sequential generator, for the pool and the schedule */
typedef struct
{
	uint64_t	s;
}			rng_t;

/* the next number of r */
static inline uint64_t
rng_next(rng_t *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

/* the next number of r below n (0 if n is 0) */
static inline uint64_t
rng_below(rng_t *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

/* per-part decision hash: stable for (seed, job id, number, salt) */
extern uint64_t hash3(long long job, long long number, int salt);

/* growable byte buffer; {0} is empty */
typedef struct
{
	char	   *p;
	size_t		len;
	size_t		cap;
}			buf_t;

extern void buf_reserve(buf_t *b, size_t extra);
extern void buf_add(buf_t *b, const void *data, size_t n);
extern void buf_printf(buf_t *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* append s[0..n) as a JSON string body, escaped as Go's encoding/json does */
extern void json_escape(buf_t *b, const unsigned char *s, size_t n);

/* append s[0..n) in base64 */
extern void base64_encode(buf_t *b, const unsigned char *s, size_t n);

/* take the options, generate the pool: before any other content_ or part_ call */
extern void content_init(const content_opts_t *o);

/* does part (job, number) get 1-3 raw 0xFF bytes? */
extern int	part_has_invalid(long long job, long number);

/* the size content bytes of part (job, number) into out; ts for --timestamp */
extern void part_content(long long job, long number, long long ts, unsigned char *out);

/* the uuid of part (job, number) into out (37 bytes) */
extern void make_uuid(char *out, long long job, long long number);

/* n bytes of pool text into out, ending on a character boundary */
extern void content_fill(unsigned char *out, size_t n);

#endif
