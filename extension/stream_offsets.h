/*-------------------------------------------------------------------------
 * stream_offsets.h
 *	  Where each job's HTTP stream upload stands (buildlog.stream_offsets).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_STREAM_OFFSETS_H
#define BUILDLOG_STREAM_OFFSETS_H

#include "postgres.h"

/* Does the installed schema have buildlog.stream_offsets (0.3.1 and later)? */
extern bool buildlog_stream_offsets_present(void);

/*
 * Record, in the caller's transaction (SPI connected), that the streams of
 * jobs[i] have stored raw[i] raw bytes and number their next part next[i].
 * A job may appear once only.  Nothing when the table is not installed.
 */
extern void buildlog_stream_offsets_store(const int64 *jobs, const int64 *raw,
										  const int32 *next, int n);

/* Forget a job's stream offset (its log set whole, removed or purged; SPI connected). */
extern void buildlog_stream_offsets_forget(int64 job_id);

#endif							/* BUILDLOG_STREAM_OFFSETS_H */
