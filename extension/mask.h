/*-------------------------------------------------------------------------
 * mask.h
 *	  Finding a job's secrets (and their common encodings) in log text and
 *	  replacing every occurrence by "***".
 *
 * A MaskSet is compiled once from the secrets' plain values: each secret,
 * its URL encoding and its base64 encodings at the three byte alignments
 * become patterns.  buildlog_mask_find() scans a text once, whatever the
 * number of patterns (a hash of each position's first bytes, checked
 * against the patterns only on a hit), and returns the matched spans,
 * overlapping ones joined, in order.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_MASK_H
#define BUILDLOG_MASK_H

#include "postgres.h"

/* What replaces every masked span. */
#define MASK_REPLACEMENT "***"
#define MASK_REPLACEMENT_LEN 3

/* Bounds of one registered secret, in bytes. */
#define MASK_SECRET_MIN_LEN 4
#define MASK_SECRET_MAX_LEN 1024
/* Most secrets one job may have. */
#define MASK_SECRETS_PER_JOB 1000

/* The workflow command a log uses to register a secret (GitHub's). */
#define MASK_COMMAND "::add-mask::"
#define MASK_COMMAND_LEN 12

typedef struct MaskSet MaskSet;

/* A masked span [start, end) of a text. */
typedef struct MaskSpan
{
	int32		start;
	int32		end;
} MaskSpan;

/* Compile secrets (values[i] of lens[i] bytes) with their encodings. */
extern MaskSet *buildlog_mask_compile(const char *const *values, const int *lens, int n);

/* The longest pattern of the set: a match needs at most that many bytes. */
extern int	buildlog_mask_max_len(const MaskSet *set);

/*
 * Spans of text matched by set (may be NULL), sorted and joined where they
 * overlap; returns their number, *spans palloc'd.
 */
extern int	buildlog_mask_find(const MaskSet *set, const char *text, int32 len,
							   MaskSpan **spans);

/* Sort spans and join the overlapping ones in place; returns the new count. */
extern int	buildlog_mask_join(MaskSpan *spans, int n);

/* The text with each span replaced by "***" (palloc'd, *outlen set). */
extern char *buildlog_mask_apply(const char *text, int32 len, const MaskSpan *spans,
								 int n, int32 *outlen);

/* Where offset off of the original text lies in the masked text. */
extern int32 buildlog_mask_remap(int32 off, const MaskSpan *spans, int n);

/*
 * The "::add-mask::VALUE" commands of a text: for each, the span of VALUE
 * (the rest of its line, trailing whitespace aside).  Returns their number,
 * *values palloc'd; 0 (cheaply) when the text holds no command.
 */
extern int	buildlog_mask_commands(const char *text, int32 len, MaskSpan **values);

#endif							/* BUILDLOG_MASK_H */
