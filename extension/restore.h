/*-------------------------------------------------------------------------
 * restore.h
 *	  Bringing a purged log's content back from its S3 archive.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_RESTORE_H
#define BUILDLOG_RESTORE_H

#include "postgres.h"

#include "merge.h"
#include "s3.h"

/* What the logs row records about a job's archive. */
typedef struct ArchiveFacts
{
	int64		size;			/* bytes as stored, -1 when unknown */
	char		sha256[S3_SHA256_HEX_LEN + 1];
	char		etag[S3_HEADER_LEN];	/* "" when unknown */
	int			gzip;			/* 1 gzip, 0 plain, -1 unknown (before 0.2.0) */
} ArchiveFacts;

/* A purged log's full content, downloaded and checked. */
typedef struct RestoredLog
{
	char	   *data;
	int32		len;
	char		sha256[S3_SHA256_HEX_LEN + 1];	/* the archive it came from */
} RestoredLog;

/* The archive facts of a job's row; ERROR when it records no checksum. */
extern void buildlog_archive_facts(int64 job_id, ArchiveFacts *facts);

/*
 * Download a purged log's whole archive (gunzipped when stored with gzip),
 * checked against the SHA-256 recorded at upload.  Needs an SPI
 * connection; takes no lock (aggregate() calls it before the job's lock).
 */
extern void buildlog_restore_download(int64 job_id, RestoredLog *restored);

/* Use a download as the stored log's content (bookkeeping checked). */
extern void buildlog_restore_apply(int64 job_id, StoredLog *log,
								   const RestoredLog *restored);

/*
 * Fill log->content of a purged log from its archive (gunzipped when stored
 * with gzip), checked against the SHA-256 recorded at upload.  Needs an SPI
 * connection.  ERROR when the archive is missing, different or unreachable.
 */
extern void buildlog_restore_purged(int64 job_id, StoredLog *log);

/*
 * For parts(job, after) of a purged log: read only the bytes of the parts
 * numbered above "after" (S3 Range) and make *log a log holding just those
 * parts.  Range reads need an uncompressed archive of known size; returns
 * false (nothing read) when it is gzip or unknown, or when "after" is -1
 * (read from the start, head included), so the caller restores the whole
 * log.  No part above "after": nothing is read from S3.
 */
extern bool buildlog_restore_range(int64 job_id, StoredLog *log, int32 after);

#endif							/* BUILDLOG_RESTORE_H */
