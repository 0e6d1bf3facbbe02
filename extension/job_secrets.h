/*-------------------------------------------------------------------------
 * job_secrets.h
 *	  Each job's registered secrets (buildlog.job_secrets), encrypted at
 *	  rest, and the masking of every text written for the job.
 *
 * The masking happens where text enters the database: the ingest path
 * (every part of every batch), set_content(), aggregation (the joined
 * text, which catches a secret cut across two parts), the bodies kept in
 * rejected_parts, and add_secrets() itself for what was stored before.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_JOB_SECRETS_H
#define BUILDLOG_JOB_SECRETS_H

#include "postgres.h"

#include "utils/array.h"

#include "mask.h"
#include "merge.h"

/*
 * Mask the contents (text[]) of an ingest batch whose job ids are job_ids
 * (int8[], n elements; jobs: the njobs distinct ids, sorted), and register
 * the values of its "::add-mask::" commands.  Returns contents itself when
 * nothing is masked.  Call with the jobs' shared locks held.
 */
extern ArrayType *buildlog_mask_batch(ArrayType *job_ids, ArrayType *contents, int n,
									  const int64 *jobs, int njobs);

/* The job's compiled secrets; NULL when it has none. */
extern MaskSet *buildlog_job_mask(int64 job_id);

/* t with the job's secrets masked (t itself when nothing matched). */
extern text *buildlog_mask_job_text(int64 job_id, text *t);

/* Mask an assembled log's joined text and move its part offsets. */
extern void buildlog_mask_assembled(int64 job_id, AssembledLog *a);

/* Mask rejected delivery bodies (bytea[]) with the secrets of the job each names. */
extern Datum buildlog_mask_rejected_bodies(Datum bodies);

/*
 * The most bytes a match of the job's secrets can span (its longest
 * secret's longest encoding), 0 when it has none: what a stream holds back
 * of an unfinished line at a flush.  No value is decrypted.
 */
extern int	buildlog_job_mask_hold(int64 job_id);

/* Drop the job's secrets (its log removed or purged; SPI connected). */
extern void buildlog_job_secrets_forget(int64 job_id);

#endif							/* BUILDLOG_JOB_SECRETS_H */
