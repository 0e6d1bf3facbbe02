/*-------------------------------------------------------------------------
 * restore.h
 *	  Bringing a purged log's content back from its S3 archive.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_RESTORE_H
#define BUILDLOG_RESTORE_H

#include "postgres.h"

#include "assemble.h"

/*
 * Fill log->content of a purged log from its archive (gunzipped when stored
 * with gzip), checked against the SHA-256 recorded at upload.  Needs an SPI
 * connection.  ERROR when the archive is missing, different or unreachable.
 */
extern void buildlog_restore_purged(int64 job_id, StoredLog *log);

#endif							/* BUILDLOG_RESTORE_H */
