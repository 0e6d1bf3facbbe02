/*-------------------------------------------------------------------------
 * archive.h
 *	  Archive workers: upload aggregated logs to S3, verify, purge.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_ARCHIVE_H
#define BUILDLOG_ARCHIVE_H

#include "postgres.h"

extern void buildlog_archive_register(void);
extern PGDLLEXPORT void buildlog_archive_main(Datum arg);

#endif							/* BUILDLOG_ARCHIVE_H */
