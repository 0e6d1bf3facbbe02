/*
 * common.h - what every tool needs: one way to fail, a clock and
 * checked option parsing.
 *
 * Each program defines tool_progname (the prefix of its messages).
 */
#ifndef TOOLS_COMMON_H
#define TOOLS_COMMON_H

extern const char tool_progname[];

/* print "<program>: <message>" to stderr and exit(1) */
extern void die(const char *fmt,...) __attribute__((noreturn, format(printf, 1, 2)));

/* seconds on the monotonic clock */
extern double now_mono(void);

/* wall-clock microseconds (publish's --timestamp prefix, sse_watch's latency) */
extern long long now_realtime_us(void);

/* the integer value of option --name, or die saying the range */
extern long long parse_ll(const char *name, const char *s, long long min, long long max);

/* die if arguments are left after the options (getopt's optind) */
extern void no_arguments_left(int argc, char **argv);

/* the numeric value of option --name, or die saying the range */
extern double parse_double(const char *name, const char *s, double min, double max);

#endif
