/*-------------------------------------------------------------------------
 * reader_pool.h
 *	  The helper processes and the mailbox's slots (reader_pool.c): work
 *	  handed over, its answers taken back; a bottom layer that never names
 *	  its users (work_kinds.c does).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_READER_POOL_H
#define BUILDLOG_HTTP_READER_POOL_H

#include "http/server.h"

/*
 * Hand a read to the readers and suspend its connection (reader_pool.c);
 * false with a 503 in r when every read slot is taken, or with nothing in
 * r (status 0) when no reader runs: then the caller reads inline.
 */
extern bool buildlog_http_read_handoff(HttpWorker *h, struct MHD_Connection *conn,
									   const HttpReadArgs *args, void **state,
									   HttpResponse *r);

/*
 * Queue work for the helpers on behalf of owner (an event stream; NULL for
 * buildlog_http_read_handoff and the group commit); its slot index, or:
 */
#define HTTP_READ_NO_READER	(-1)	/* no reader runs: read inline */
#define HTTP_READ_NO_SLOT	(-2)	/* every read slot is taken */
extern int	buildlog_http_read_submit(HttpWorker *h, const HttpReadArgs *args, void *owner);

/*
 * The answers' temporary files (reader_pool.c): write all of data to a new
 * file (false with errno, nothing left), read len bytes of fd (false when
 * short).
 */
extern bool buildlog_http_write_file(const char *path, const char *data, size_t len);
extern bool buildlog_http_read_fd(int fd, char *buf, size_t len);

/* Does any HTTP reader run? */
extern bool buildlog_http_readers_running(void);

/* Is the read in slot i answered? */
extern bool buildlog_http_read_done(int i);

/*
 * Take the answer of read slot i (done): its head into *head, the slot
 * freed; an open descriptor of its body (removed already), or -1 when the
 * reader failed.
 */
extern int	buildlog_http_read_take(HttpWorker *h, int i, HttpReadSlot *head);

/* Give up read slot i (its client is gone): freed now or once answered. */
extern void buildlog_http_read_cancel(HttpWorker *h, int i);

/* Is this libmicrohttpd per-request pointer a read handed to the readers? */
extern bool buildlog_http_read_pending(HttpWorker *h, void *state);

/*
 * The access handler called again for a handed-off read: queue its answer
 * when the reader is done, or suspend again; returns an MHD_Result.
 */
extern int	buildlog_http_read_answer(HttpWorker *h, struct MHD_Connection *conn,
									  void **state);

/* The request of a handed-off read ended (client gone): free its slot later. */
extern void buildlog_http_read_abandon(HttpWorker *h, void *state);

/* Resume the connections whose reads are answered, free abandoned ones. */
extern void buildlog_http_reads_collect(HttpWorker *h);

/* At the HTTP worker's start: forget what a previous one left in the slots. */
extern void buildlog_http_reads_reset(HttpWorker *h);

/* The readers' lines of GET /metrics. */
extern void buildlog_http_reads_metrics(StringInfo buf);

#endif							/* BUILDLOG_HTTP_READER_POOL_H */
