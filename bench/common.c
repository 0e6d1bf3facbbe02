/*
 * common.c - failing, clock and option parsing shared by the bench tools.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", bench_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

long long
parse_ll(const char *name, const char *s, long long min, long long max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die("--%s: '%s' is not an integer in [%lld, %lld]", name, s, min, max);
	return v;
}

double
parse_double(const char *name, const char *s, double min, double max)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		die("--%s: '%s' is not a number in [%g, %g]", name, s, min, max);
	return v;
}
