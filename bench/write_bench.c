/*
 * write_bench: libpq client for script/bench.
 *
 *   write_bench write_parts SIZE BATCHES [ROWS [JOBS]]  timed, one line "rows bytes seconds"
 *   write_bench copy_text   SIZE BATCHES [ROWS [JOBS]]  same rows through COPY (text)
 *   write_bench copy_binary SIZE BATCHES [ROWS [JOBS]]  same rows through COPY (binary)
 *   write_bench load JOBS PARTS SIZE                    untimed binary COPY for the aggregate
 *                                                       bench: one COPY per part number, last final
 *
 * Rows are generated (fixed seed, so every run writes the same bytes) and
 * encoded before the clock starts: the timing covers only sending the
 * batches and the server's work.  Row g of the run goes to job 1 + g % JOBS
 * as part number g / JOBS, so every batch holds parts of every job.
 *
 * write_parts: a prepared "select ... from buildlog.write_parts($1..$4)"
 * with the four arrays as binary-format parameters (int8[], int4[], text[],
 * bool[]), one call per batch, autocommit (one transaction per batch).
 * copy_text: "COPY buildlog.log_parts (job_id, number, content, final) FROM
 * STDIN" in text format, one COPY (one transaction) per batch; copy_binary:
 * the same with FORMAT binary.
 * Connection parameters come from the environment (PGHOST, PGDATABASE...).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define INT8ARRAYOID 1016
#define INT4ARRAYOID 1007
#define TEXTARRAYOID 1009
#define BOOLARRAYOID 1000
#define INT8OID 20
#define INT4OID 23
#define TEXTOID 25
#define BOOLOID 16

typedef struct { char *data; size_t len, cap; } Buf;

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "write_bench: %s: %s\n", what, conn ? PQerrorMessage(conn) : "");
	exit(1);
}

static void
put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2;
		if (!(b->data = realloc(b->data, b->cap)))
			die("out of memory", NULL);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put32(Buf *b, uint32_t v)
{
	v = htonl(v);
	put(b, &v, 4);
}

static void
put64(Buf *b, uint64_t v)
{
	put32(b, (uint32_t) (v >> 32));
	put32(b, (uint32_t) v);
}

/* ------------------------------------------------------------ content */

static uint64_t rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned) (rng % n);
}

/* One line of plausible CI output: ANSI colours, CRLF, quotes, tabs,
 * backslashes, bare-CR progress bars and some non-ASCII UTF-8. */
static int
log_line(char *out, size_t cap)
{
	unsigned	a = rnd(1000), b = rnd(100);

	switch (rnd(9))
	{
		case 0: return snprintf(out, cap, "$ bundle install --jobs=3 --retry=3 --deployment\r\n");
		case 1: return snprintf(out, cap, "\033[32;1mThe command \"bundle exec rake\" exited with 0.\033[0m\r\n");
		case 2: return snprintf(out, cap, "Installing nokogiri 1.10.%u with native extensions\r\n", b);
		case 3: return snprintf(out, cap, "travis_fold:start:install.%u\r\033[0K\033[33;1mRunning tests\033[0m\r\n", a);
		case 4: return snprintf(out, cap, "  \u2713 passes test case %u (%u ms) \u2014 ok\r\n", a, b);
		case 5: return snprintf(out, cap, "C:\\Users\\travis\\build\\src\\mod%u.c:%u: warning: unused variable 'x'\r\n", b, a);
		case 6: return snprintf(out, cap, "\tat org.example.FooTest.run(FooTest.java:%u)\r\n", a);
		case 7: return snprintf(out, cap, "Progress: %u%% [%.*s>%*s]\r", b, (int) (b / 10), "==========", (int) (10 - b / 10), "");
		default: return snprintf(out, cap, "gcc -O2 -Wall -c src/file_%u.c -o build/file_%u.o\r\n", a, a);
	}
}

/* Exactly size bytes of log text, valid UTF-8 (cut at a character edge,
 * padded with spaces). */
static char *
make_part(int size)
{
	char	   *p = malloc(size + 256);
	int			len = 0;

	while (len < size)
		len += log_line(p + len, 256);
	len = size;
	while (len > 0 && (p[len] & 0xC0) == 0x80)
		len--;					/* p[len] starts the cut character */
	memset(p + len, ' ', size - len);
	p[size] = '\0';
	return p;
}

/* COPY text format: escape backslash and the control characters that
 * would end a field or row. */
static void
put_copy_text(Buf *b, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '\\': put(b, "\\\\", 2); break;
			case '\n': put(b, "\\n", 2); break;
			case '\r': put(b, "\\r", 2); break;
			case '\t': put(b, "\\t", 2); break;
			default: put(b, s, 1);
		}
	}
}

/* Binary array header: ndim 1, no nulls, element type, length, lower bound 1. */
static void
array_header(Buf *b, uint32_t elemtype, int n)
{
	put32(b, 1);
	put32(b, 0);
	put32(b, elemtype);
	put32(b, n);
	put32(b, 1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
ok(PGresult *r, ExecStatusType want, PGconn *conn, const char *what)
{
	if (!r || PQresultStatus(r) != want)
		die(what, conn);
}

/* One COPY of buf as its own transaction; returns the rows copied. */
static long
copy_batch(PGconn *conn, const Buf *buf, int binary)
{
	PGresult   *r = PQexec(conn, binary ?
						   "COPY buildlog.log_parts (job_id, number, content, final) FROM STDIN (FORMAT binary)" :
						   "COPY buildlog.log_parts (job_id, number, content, final) FROM STDIN");
	long		rows;

	ok(r, PGRES_COPY_IN, conn, "COPY");
	PQclear(r);
	if (PQputCopyData(conn, buf->data, (int) buf->len) != 1 || PQputCopyEnd(conn, NULL) != 1)
		die("COPY data", conn);
	r = PQgetResult(conn);
	ok(r, PGRES_COMMAND_OK, conn, "COPY end");
	rows = atol(PQcmdTuples(r));
	PQclear(r);
	while ((r = PQgetResult(conn)))
		PQclear(r);
	return rows;
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int			load = strcmp(mode, "load") == 0;
	int			binary = load || strcmp(mode, "copy_binary") == 0;
	int			size, nbatches, rows, jobs;
	long		done = 0;
	long long	bytes = 0;
	PGconn	   *conn;
	Buf		   *bufs;
	double		t0, t1;

	if (argc < 4 || (strcmp(mode, "write_parts") && strcmp(mode, "copy_text") && !binary && !load))
	{
		fprintf(stderr, "usage: write_bench write_parts|copy_text|copy_binary SIZE BATCHES [ROWS [JOBS]]\n"
				"       write_bench load JOBS PARTS SIZE\n");
		return 2;
	}
	if (load)
	{							/* one batch per part number: each holds one part of every job */
		if (argc < 5)
			return 2;
		jobs = rows = atoi(argv[2]);
		nbatches = atoi(argv[3]);
		size = atoi(argv[4]);
	}
	else
	{
		size = atoi(argv[2]);
		nbatches = atoi(argv[3]);
		rows = argc > 4 ? atoi(argv[4]) : 500;
		jobs = argc > 5 ? atoi(argv[5]) : 50;
	}

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", conn);

	/* generate and encode every batch before timing */
	bufs = calloc(nbatches * 4, sizeof(Buf));
	for (int b = 0; b < nbatches; b++)
	{
		Buf		   *w = &bufs[b * 4];	/* job_ids, numbers, contents, finals */

		if (strcmp(mode, "write_parts") == 0)
		{
			array_header(&w[0], INT8OID, rows);
			array_header(&w[1], INT4OID, rows);
			array_header(&w[2], TEXTOID, rows);
			array_header(&w[3], BOOLOID, rows);
		}
		if (binary)				/* signature, flags, header extension length */
		{
			put(&w[0], "PGCOPY\n\377\r\n\0", 11);
			put32(&w[0], 0);
			put32(&w[0], 0);
		}
		for (int i = 0; i < rows; i++)
		{
			long		g = (long) b * rows + i;
			long long	job = 1 + g % jobs;
			int			number = (int) (g / jobs);
			int			final = load && b == nbatches - 1;
			char	   *part = make_part(size);
			char		num[64];

			bytes += size;
			if (strcmp(mode, "write_parts") == 0)
			{
				put32(&w[0], 8);
				put64(&w[0], (uint64_t) job);
				put32(&w[1], 4);
				put32(&w[1], (uint32_t) number);
				put32(&w[2], (uint32_t) size);
				put(&w[2], part, size);
				put32(&w[3], 1);
				put(&w[3], final ? "\1" : "\0", 1);
			}
			else if (binary)	/* field count, then length + value each */
			{
				put(&w[0], "\0\4", 2);
				put32(&w[0], 8);
				put64(&w[0], (uint64_t) job);
				put32(&w[0], 4);
				put32(&w[0], (uint32_t) number);
				put32(&w[0], (uint32_t) size);
				put(&w[0], part, size);
				put32(&w[0], 1);
				put(&w[0], final ? "\1" : "\0", 1);
			}
			else
			{
				put(&w[0], num, snprintf(num, sizeof num, "%lld\t%d\t", job, number));
				put_copy_text(&w[0], part);
				put(&w[0], final ? "\tt\n" : "\tf\n", 3);
			}
			free(part);
		}
		if (binary)
			put(&w[0], "\377\377", 2);	/* trailer */
	}

	if (strcmp(mode, "write_parts") == 0)
	{
		Oid			types[4] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, BOOLARRAYOID};
		PGresult   *r = PQprepare(conn, "w",
								  "select parts, bytes from buildlog.write_parts($1, $2, $3, $4)",
								  4, types);

		ok(r, PGRES_COMMAND_OK, conn, "prepare");
		PQclear(r);
		t0 = now();
		for (int b = 0; b < nbatches; b++)
		{
			Buf		   *w = &bufs[b * 4];
			const char *values[4] = {w[0].data, w[1].data, w[2].data, w[3].data};
			int			lengths[4] = {(int) w[0].len, (int) w[1].len, (int) w[2].len, (int) w[3].len};
			int			formats[4] = {1, 1, 1, 1};

			r = PQexecPrepared(conn, "w", 4, values, lengths, formats, 0);
			ok(r, PGRES_TUPLES_OK, conn, "write_parts");
			done += atol(PQgetvalue(r, 0, 0));
			PQclear(r);
		}
		t1 = now();
	}
	else
	{
		t0 = now();
		for (int b = 0; b < nbatches; b++)
			done += copy_batch(conn, &bufs[b * 4], binary);
		t1 = now();
	}
	if (done != (long) nbatches * rows)
	{
		fprintf(stderr, "write_bench: wrote %ld rows, expected %ld\n", done, (long) nbatches * rows);
		return 1;
	}
	printf("%ld %lld %.6f\n", done, bytes, t1 - t0);
	PQfinish(conn);
	return 0;
}
