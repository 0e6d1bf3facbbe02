/*
 * common.c - failing, clock and option parsing shared by the load tools (tools/) and bench/consume_raw.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

/* the one way a tool fails: a message with the program's name, exit 1 */
void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", tool_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* seconds on the monotonic clock, for rates and deadlines */
double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* wall-clock microseconds: timestamps compared across processes */
long long
now_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long) ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* an integer option value in [min, max], or die naming the option */
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

/* a numeric option value in [min, max], or die naming the option */
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

/* the tools take options only: a leftover argument is a mistake */
void
no_arguments_left(int argc, char **argv)
{
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
}
