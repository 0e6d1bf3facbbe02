/*-------------------------------------------------------------------------
 * reader_pool.c
 *	  The HTTP wing's helper processes ("buildlog http reader N") and the
 *	  mailbox between them and the HTTP worker: work that could hold up
 *	  the worker serving every connection (a big log, a purged log fetched
 *	  from S3, a slow query, a group commit of uploads) runs here.
 *
 * The HTTP worker puts a piece of work in a free slot of the mailbox
 * (mailbox.h), suspends what waits for it and wakes the helpers.  A helper
 * claims it, runs it as its kind says (work_kinds.c: the pool names none
 * of its users), writes the answer's body to a temporary file
 * (base/pgsql_tmp, removed by PostgreSQL after a crash) and its head into
 * the slot, and wakes the HTTP worker, which hands the answer to the
 * work's owner or resumes the waiting connection and sends the file with
 * sendfile(): the body never passes through the worker's memory.  A
 * client gone meanwhile leaves the slot to be freed once the helper is
 * done; a helper that exits mid-work answers 503.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http/http.h"
#include "http/limits.h"
#include "http/reader_pool.h"
#include "http/work_kinds.h"
#include "shmem.h"

#define READER_IDLE_MS	1000

/* Where the body of read slot i, number seq, is written. */
static void
body_path(char *path, size_t len, int i, uint64 seq)
{
	snprintf(path, len, "base/" PG_TEMP_FILES_DIR "/" PG_TEMP_FILE_PREFIX "buildlog_http.%d." UINT64_FORMAT,
			 i, seq);
}

bool
buildlog_http_write_file(const char *path, const char *data, size_t len)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, S_IRUSR | S_IWUSR);
	size_t		done = 0;

	if (fd < 0)
		return false;
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, Min(len - done, (size_t) 1 << 20));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			int			save = errno;

			close(fd);
			(void) unlink(path);
			errno = save;
			return false;
		}
		done += n;
	}
	close(fd);
	return true;
}

bool
buildlog_http_read_fd(int fd, char *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		n = read(fd, buf + done, Min(len - done, (size_t) 1 << 20));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

static HttpReadShared *
reads(void)
{
	return buildlog_http_mailbox;
}

/* Wake the readers: one of them claims the read. */
static void
wake_readers(void)
{
	for (int i = 0; i < BUILDLOG_MAX_HTTP_READERS; i++)
		(void) buildlog_slot_wake(&buildlog_shared->http_readers[i].slot);
}

bool
buildlog_http_readers_running(void)
{
	for (int i = 0; i < BUILDLOG_MAX_HTTP_READERS; i++)
		if (pg_atomic_read_u32(&buildlog_shared->http_readers[i].slot.in_use) != 0)
			return true;
	return false;
}

int
buildlog_http_read_submit(HttpWorker *h, const HttpReadArgs *args, void *owner)
{
	HttpReadShared *rs = reads();
	int			found = -1;

	if (!buildlog_http_readers_running())
		return HTTP_READ_NO_READER; /* none started (yet) */
	SpinLockAcquire(&rs->mutex);
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
	{
		HttpReadSlot *slot = &rs->reads[i];

		if (slot->state != HTTP_READ_FREE)
			continue;
		slot->state = HTTP_READ_QUEUED;
		slot->seq = ++rs->next_seq;
		slot->requester_pid = MyProcPid;
		slot->reader = -1;
		slot->args = *args;
		slot->status = 0;
		slot->nheaders = 0;
		slot->body_len = 0;
		h->reads[i].seq = slot->seq;
		found = i;
		break;
	}
	SpinLockRelease(&rs->mutex);
	if (found < 0)
		return HTTP_READ_NO_SLOT;
	h->reads[found].conn = NULL;
	h->reads[found].kind = args->kind;
	h->reads[found].owner = owner;
	h->reads[found].resumed = false;
	h->reads[found].busy = true;
	h->reads_pending++;
	wake_readers();
	return found;
}

bool
buildlog_http_read_handoff(HttpWorker *h, struct MHD_Connection *conn,
						   const HttpReadArgs *args, void **state, HttpResponse *r)
{
	int			i = buildlog_http_read_submit(h, args, NULL);

	if (i == HTTP_READ_NO_SLOT)
	{
		buildlog_http_add_header(r, "Retry-After", "1");
		buildlog_http_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable",
							  psprintf("%d reads are in flight, the most the readers take at once; try again in a second.",
									   BUILDLOG_HTTP_READS));
	}
	if (i < 0)
		return false;
	h->reads[i].conn = conn;
	*state = &h->reads[i];
	MHD_suspend_connection(conn);
	return true;
}

bool
buildlog_http_read_pending(HttpWorker *h, void *state)
{
	return (char *) state >= (char *) &h->reads[0] &&
		(char *) state < (char *) &h->reads[BUILDLOG_HTTP_READS];
}

/* Free slot i (under the mutex) after its body file is gone. */
static void
free_slot(int i, bool unlink_body)
{
	HttpReadSlot *slot = &reads()->reads[i];
	char		path[MAXPGPATH];

	if (unlink_body)
	{
		body_path(path, sizeof(path), i, slot->seq);
		(void) unlink(path);
	}
	SpinLockAcquire(&reads()->mutex);
	slot->state = HTTP_READ_FREE;
	SpinLockRelease(&reads()->mutex);
}

bool
buildlog_http_read_done(int i)
{
	HttpReadState state;

	SpinLockAcquire(&reads()->mutex);
	state = reads()->reads[i].state;
	SpinLockRelease(&reads()->mutex);
	return state == HTTP_READ_DONE;
}

int
buildlog_http_read_take(HttpWorker *h, int i, HttpReadSlot *head)
{
	HttpReadSlot *slot = &reads()->reads[i];
	char		path[MAXPGPATH];
	int			fd;

	SpinLockAcquire(&reads()->mutex);
	memcpy(head, slot, sizeof(*head));
	SpinLockRelease(&reads()->mutex);
	Assert(head->state == HTTP_READ_DONE);
	h->reads[i].conn = NULL;
	h->reads[i].owner = NULL;
	h->reads[i].busy = false;
	h->reads_pending--;
	body_path(path, sizeof(path), i, head->seq);
	fd = head->status == 0 ? -1 : open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0 && head->status != 0)
		buildlog_worker_problem(&h->w, WARNING,
								psprintf("could not open the answer of a reader \"%s\": %m", path));
	(void) unlink(path);
	free_slot(i, false);
	return fd;
}

/* The answer of a read the reader could not give. */
static int
answer_unavailable(HttpWorker *h, struct MHD_Connection *conn, const char *detail)
{
	HttpResponse r;

	memset(&r, 0, sizeof(r));
	r.cxt = h->w.step_cxt;
	buildlog_http_add_header(&r, "Retry-After", "1");
	buildlog_http_problem(&r, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable", detail);
	return buildlog_http_send(h, conn, &r);
}

int
buildlog_http_read_answer(HttpWorker *h, struct MHD_Connection *conn, void **state)
{
	HttpPendingRead *p = (HttpPendingRead *) *state;
	int			i = p - h->reads;
	HttpReadSlot head;
	struct MHD_Response *resp;
	int			fd;
	int			ret;

	if (!buildlog_http_read_done(i))
	{
		/* called before the reader is done: wait on */
		p->resumed = false;
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	*state = NULL;
	fd = buildlog_http_read_take(h, i, &head);
	if (fd < 0)
		return answer_unavailable(h, conn,
								  "The reader answering this read stopped or failed; try again.");
	if (!buildlog_http_answer_admit(conn, head.body_len))
	{
		close(fd);
		return answer_unavailable(h, conn,
								  psprintf("The service is sending its most bytes of log answers at once (buildlog.http_max_answer_bytes); try again."));
	}
	resp = MHD_create_response_from_fd64((uint64_t) head.body_len, fd);
	if (resp == NULL)
	{
		close(fd);
		return MHD_NO;
	}
	if (head.content_type[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, head.content_type);
	for (int k = 0; k < head.nheaders; k++)
		MHD_add_response_header(resp, head.headers[k][0], head.headers[k][1]);
	ret = buildlog_http_queue(h, conn, resp, head.status, (uint64) head.body_len);
	MHD_destroy_response(resp);
	return ret;
}

void
buildlog_http_read_cancel(HttpWorker *h, int i)
{
	HttpPendingRead *p = &h->reads[i];
	HttpReadSlot *slot = &reads()->reads[i];

	if (!p->busy)
		return;
	p->busy = false;
	p->conn = NULL;
	p->owner = NULL;
	h->reads_pending--;
	SpinLockAcquire(&reads()->mutex);
	if (slot->state == HTTP_READ_QUEUED && slot->seq == p->seq)
		slot->state = HTTP_READ_FREE;	/* no reader has seen it */
	else if (slot->seq == p->seq)
	{
		slot->requester_pid = 0;	/* freed when the reader is done */
		h->reads_orphaned++;
	}
	SpinLockRelease(&reads()->mutex);
}

void
buildlog_http_read_abandon(HttpWorker *h, void *state)
{
	buildlog_http_read_cancel(h, (HttpPendingRead *) state - h->reads);
}

void
buildlog_http_reads_collect(HttpWorker *h)
{
	if (h->reads_pending == 0 && h->reads_orphaned == 0)
		return;
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
	{
		HttpReadSlot *slot = &reads()->reads[i];
		HttpReadState state;
		int			requester;

		SpinLockAcquire(&reads()->mutex);
		state = slot->state;
		requester = slot->requester_pid;
		SpinLockRelease(&reads()->mutex);
		if (state != HTTP_READ_DONE)
			continue;
		if (requester != MyProcPid)
		{
			free_slot(i, true);
			h->reads_orphaned = Max(h->reads_orphaned - 1, 0);
		}
		else if (buildlog_http_work_kind(h->reads[i].kind)->done != NULL)
			buildlog_http_work_kind(h->reads[i].kind)->done(h, h->reads[i].owner, i);
		else if (h->reads[i].conn != NULL && !h->reads[i].resumed)
		{
			h->reads[i].resumed = true;
			MHD_resume_connection(h->reads[i].conn);
		}
	}
}

void
buildlog_http_reads_reset(HttpWorker *h)
{
	SpinLockAcquire(&reads()->mutex);
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
	{
		HttpReadSlot *slot = &reads()->reads[i];

		if (slot->state == HTTP_READ_QUEUED)
			slot->state = HTTP_READ_FREE;
		else if (slot->state != HTTP_READ_FREE)
		{
			slot->requester_pid = 0;
			h->reads_orphaned++;
		}
	}
	SpinLockRelease(&reads()->mutex);
}

void
buildlog_http_reads_metrics(StringInfo buf)
{
	HttpReadShared *rs = reads();
	int			in_flight = 0;
	static const char *const docs[][3] = {
		{"buildlog_http_reads_total", "counter", "Reads (GET /log, /parts) answered by an HTTP reader."},
		{"buildlog_http_read_bytes_total", "counter", "Body bytes an HTTP reader wrote for the HTTP worker."},
		{"buildlog_http_read_seconds_total", "counter", "Time an HTTP reader spent reading."},
	};

	SpinLockAcquire(&rs->mutex);
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
		if (rs->reads[i].state != HTTP_READ_FREE)
			in_flight++;
	SpinLockRelease(&rs->mutex);
	appendStringInfo(buf, "# HELP buildlog_http_reads_in_flight Reads handed to the HTTP readers and not yet sent (at most %d).\n"
					 "# TYPE buildlog_http_reads_in_flight gauge\nbuildlog_http_reads_in_flight %d\n",
					 BUILDLOG_HTTP_READS, in_flight);
	for (int m = 0; m < lengthof(docs); m++)
	{
		appendStringInfo(buf, "# HELP %s %s\n# TYPE %s %s\n", docs[m][0], docs[m][2], docs[m][0], docs[m][1]);
		for (int i = 0; i < buildlog_http_readers; i++)
		{
			HttpReaderStats *st = &buildlog_shared->http_readers[i];

			if (m == 0)
				appendStringInfo(buf, "%s{reader=\"%d\"} " UINT64_FORMAT "\n", docs[m][0], i + 1,
								 pg_atomic_read_u64(&st->reads));
			else if (m == 1)
				appendStringInfo(buf, "%s{reader=\"%d\"} " UINT64_FORMAT "\n", docs[m][0], i + 1,
								 pg_atomic_read_u64(&st->bytes));
			else
				appendStringInfo(buf, "%s{reader=\"%d\"} %.6f\n", docs[m][0], i + 1,
								 pg_atomic_read_u64(&st->busy_us) / 1e6);
		}
	}
}

/*
 * Reader side.
 */

/* The reader's index and skeleton. */
typedef struct HttpReader
{
	BuildlogWorker w;
	int			index;
	HttpReaderStats *stats;
} HttpReader;

static int	reader_index = -1;

/* Claim the oldest queued read; -1 when none waits. */
static int
claim(int index, HttpReadArgs *args, uint64 *seq, int *requester)
{
	HttpReadShared *rs = reads();
	int			found = -1;

	SpinLockAcquire(&rs->mutex);
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
	{
		HttpReadSlot *slot = &rs->reads[i];

		if (slot->state == HTTP_READ_QUEUED &&
			(found < 0 || slot->seq < rs->reads[found].seq))
			found = i;
	}
	if (found >= 0)
	{
		rs->reads[found].state = HTTP_READ_RUNNING;
		rs->reads[found].reader = index;
		*args = rs->reads[found].args;
		*seq = rs->reads[found].seq;
		*requester = rs->reads[found].requester_pid;
	}
	SpinLockRelease(&rs->mutex);
	return found;
}

/* Mark read i done with its head (status 0: failed) and wake the HTTP worker. */
static void
finish(int i, uint64 seq, const HttpResponse *r, unsigned int status)
{
	HttpReadSlot *slot = &reads()->reads[i];

	SpinLockAcquire(&reads()->mutex);
	if (slot->seq == seq && slot->state == HTTP_READ_RUNNING)
	{
		slot->status = status;
		slot->body_len = status == 0 ? 0 : (int64) r->len;
		strlcpy(slot->content_type, r->content_type ? r->content_type : "",
				sizeof(slot->content_type));
		slot->nheaders = Min(r->nheaders, BUILDLOG_HTTP_HEADERS);
		for (int k = 0; k < slot->nheaders; k++)
		{
			strlcpy(slot->headers[k][0], r->headers[k][0], BUILDLOG_HTTP_HEADER_LEN);
			strlcpy(slot->headers[k][1], r->headers[k][1], BUILDLOG_HTTP_HEADER_LEN);
		}
		slot->state = HTTP_READ_DONE;
	}
	SpinLockRelease(&reads()->mutex);
	buildlog_slot_wake(&buildlog_shared->http.slot);
}

/* Write the body of read i to its file; false (said) when that failed. */
static bool
write_body(HttpReader *rd, int i, uint64 seq, const HttpResponse *r)
{
	char		path[MAXPGPATH];

	body_path(path, sizeof(path), i, seq);
	if (buildlog_http_write_file(path, r->body, r->len))
		return true;
	buildlog_worker_problem(&rd->w, WARNING,
							psprintf("could not write \"%s\" for an answer: %m", path));
	return false;
}

/* Answer read i: the read step, its body to the file, its head to the slot. */
static void
answer(HttpReader *rd, int i, const HttpReadArgs *args, uint64 seq, int requester)
{
	HttpResponse r;
	TimestampTz started = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	MemoryContextReset(rd->w.step_cxt);
	MemoryContextSwitchTo(rd->w.step_cxt);
	memset(&r, 0, sizeof(r));
	r.cxt = rd->w.step_cxt;
	buildlog_http_work_kind(args->kind)->run(&rd->w, args, requester, &r);
	pgstat_report_stat(false);
	if (r.status == 0)
		buildlog_http_problem(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error",
							  "The read produced no answer.");
	finish(i, seq, &r, write_body(rd, i, seq, &r) ? r.status : 0);
	pg_atomic_fetch_add_u64(&rd->stats->reads, 1);
	pg_atomic_fetch_add_u64(&rd->stats->bytes, r.len);
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	pg_atomic_fetch_add_u64(&rd->stats->busy_us, (uint64) secs * 1000000 + usecs);
	MemoryContextSwitchTo(rd->w.loop_cxt);
}

/* A read this reader held when it stopped (or before it restarted): 503. */
static void
fail_held(int code, Datum arg)
{
	HttpResponse none;

	memset(&none, 0, sizeof(none));
	for (int i = 0; i < BUILDLOG_HTTP_READS; i++)
	{
		HttpReadSlot *slot = &reads()->reads[i];
		bool		held;
		uint64		seq;

		SpinLockAcquire(&reads()->mutex);
		held = slot->state == HTTP_READ_RUNNING && slot->reader == reader_index;
		seq = slot->seq;
		SpinLockRelease(&reads()->mutex);
		if (held)
			finish(i, seq, &none, 0);
	}
}

void
buildlog_http_readers_register(void)
{
	for (int i = 0; i < buildlog_http_readers; i++)
		buildlog_worker_register_n("http reader", "buildlog_http_reader_main", i, true,
								   buildlog_http_readers);
}

void
buildlog_http_reader_main(Datum arg)
{
	HttpReader	rd;

	memset(&rd, 0, sizeof(rd));
	memcpy(&rd.index, MyBgworkerEntry->bgw_extra, sizeof(int));
	reader_index = rd.index;
	rd.stats = &buildlog_shared->http_readers[rd.index];
	buildlog_worker_start(&rd.w, &rd.stats->slot, 0, 0, 300);
	fail_held(0, (Datum) 0);
	before_shmem_exit(fail_held, (Datum) 0);
	if (MakePGDirectory("base/" PG_TEMP_FILES_DIR) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"base/" PG_TEMP_FILES_DIR "\": %m")));

	for (;;)
	{
		HttpReadArgs args;
		uint64		seq;
		int			requester;
		int			i;

		buildlog_worker_check_interrupts();
		(void) buildlog_worker_reload(&rd.w);
		i = claim(rd.index, &args, &seq, &requester);
		if (i < 0)
		{
			buildlog_worker_wait(READER_IDLE_MS);
			continue;
		}
		answer(&rd, i, &args, seq, requester);
	}
}
