/*-------------------------------------------------------------------------
 * joblock.h
 *	  Per-job transaction locks that order ingestion against aggregation.
 *
 * Writers hold a shared lock on every job of their batch; aggregate() and
 * set_content() hold an exclusive one.  A part is therefore either seen by
 * the aggregation that runs after its writer commits, or written after that
 * aggregation committed and flagged "late" (see ingest.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_JOBLOCK_H
#define BUILDLOG_JOBLOCK_H

#include "postgres.h"

#include "storage/lock.h"

/* field4 of buildlog's advisory lock tags: which kind of per-job lock */
#define BUILDLOG_LOCK_JOB		0x424c	/* "BL": ingestion and aggregation */
#define BUILDLOG_LOCK_TOKENS	0x4254	/* "BT": issuing and revoking tokens */

/* The advisory lock tag of a job in this database, of one kind (field4). */
extern void buildlog_job_locktag(LOCKTAG *tag, int64 job_id, uint16 kind);

extern void buildlog_lock_jobs_shared(const int64 *sorted_job_ids, int n);
extern void buildlog_lock_job_exclusive(int64 job_id);

#endif							/* BUILDLOG_JOBLOCK_H */
