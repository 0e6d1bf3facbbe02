/*-------------------------------------------------------------------------
 * mailbox.h
 *	  The HTTP worker's mailbox to its helper processes (reader_pool.c): a
 *	  fixed set of slots in shared memory of the HTTP wing's own, each
 *	  holding one piece of work (a read, or a group commit) and the head of
 *	  its answer; the answer's body is a temporary file.
 *
 * Private to bgworker/http/: the library never sees these types; the
 * shared memory is requested by the wing itself when the HTTP service is
 * registered (buildlog_http_mailbox_init_hooks(), from _PG_init).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_MAILBOX_H
#define BUILDLOG_HTTP_MAILBOX_H

#include "postgres.h"

#include "storage/spin.h"

#define BUILDLOG_HTTP_READS			64	/* reads handed to the readers at once */
#define BUILDLOG_HTTP_ETAG_LEN		48
#define BUILDLOG_HTTP_HEADER_LEN	128
#define BUILDLOG_HTTP_HEADERS		8

/* What a GET /jobs/{id}/log or /parts asks for (parsed by the HTTP worker). */
typedef enum HttpReadKind
{
	HTTP_READ_LOG = 1,			/* /jobs/{id}/log */
	HTTP_READ_PARTS,			/* /jobs/{id}/parts */
	HTTP_READ_EVENTS,			/* an event stream's parts after a number */
	HTTP_READ_BUNDLE,			/* /jobs/{id}/bundle, the viewer's read */
	HTTP_WRITE_GROUP,			/* a group commit of uploads (job_id: its number) */
	HTTP_READ_TRAVIS_LOG,		/* travis-logs' GET /logs/{job} */
	HTTP_READ_TRAVIS_PARTS		/* travis-logs' GET /log-parts/{job} */
} HttpReadKind;

typedef struct HttpReadArgs
{
	HttpReadKind kind;
	int64		job_id;
	int64		start;			/* Range: bytes=N- (log), -1 without */
	int32		after;			/* ?after=N (parts), the stream's prefix (events) */
	bool		deansi;			/* ?deansi=1 (log) */
	bool		index_only;		/* ?bytes=0 (bundle), ?content=false (travis parts) */
	char		if_none_match[BUILDLOG_HTTP_ETAG_LEN];	/* empty without */
} HttpReadArgs;

/* Where a read handed to the reader processes is. */
typedef enum HttpReadState
{
	HTTP_READ_FREE = 0,
	HTTP_READ_QUEUED,			/* waiting for a reader */
	HTTP_READ_RUNNING,			/* a reader runs it */
	HTTP_READ_DONE				/* answered: head here, body in the file */
} HttpReadState;

/*
 * One read handed by the HTTP worker to a reader (all under reads.mutex):
 * the request, then the answer's head; its body is a temporary file the
 * HTTP worker sends from (reader_pool.c).
 */
typedef struct HttpReadSlot
{
	HttpReadState state;
	uint64		seq;			/* names the body's file */
	int			requester_pid;	/* the HTTP worker that queued it */
	int			reader;			/* index of the reader running it */
	HttpReadArgs args;
	unsigned int status;		/* the answer, 0: the reader failed */
	int			nheaders;
	char		content_type[64];
	char		headers[BUILDLOG_HTTP_HEADERS][2][BUILDLOG_HTTP_HEADER_LEN];
	int64		body_len;
} HttpReadSlot;

/* The reads in flight between the HTTP worker and its readers. */
typedef struct HttpReadShared
{
	slock_t		mutex;
	uint64		next_seq;
	HttpReadSlot reads[BUILDLOG_HTTP_READS];
} HttpReadShared;

/* The mailbox (NULL when the HTTP service was not registered). */
extern HttpReadShared *buildlog_http_mailbox;

/* Request and attach the mailbox's shared memory; from _PG_init. */
extern void buildlog_http_mailbox_init_hooks(void);

#endif							/* BUILDLOG_HTTP_MAILBOX_H */
