/*-------------------------------------------------------------------------
 * guc.h
 *	  buildlog.* settings shared by SQL functions and workers.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_GUC_H
#define BUILDLOG_GUC_H

extern int	buildlog_aggregate_delay_ms;
extern int	buildlog_aggregate_force_after_s;
extern int	buildlog_maintenance_lock_timeout_ms;
extern int	buildlog_max_part_bytes;
extern char *buildlog_database;
extern char *buildlog_amqp_url;
extern char *buildlog_amqp_queues;
extern int	buildlog_drain_workers;
extern int	buildlog_batch_size;
extern int	buildlog_flush_ms;
extern int	buildlog_amqp_heartbeat_s;
extern int	buildlog_batch_bytes;
extern char *buildlog_amqp_password_file;
extern int	buildlog_maintenance_interval_s;
extern int	buildlog_rejected_retention_s;
extern int	buildlog_archive_workers;
extern int	buildlog_purge_delay_s;

/* HTTP service (bgworker/http/) */
extern char *buildlog_http_listen;
extern int	buildlog_http_max_connections;
extern int	buildlog_http_timeout_s;
extern int	buildlog_http_readers;
extern char *buildlog_http_token_key_file;
extern char *buildlog_secrets_key_file;
extern int	buildlog_http_max_body;
extern bool buildlog_http_read_tokens;
extern int	buildlog_http_max_connections_per_client;
extern int	buildlog_http_max_streams_per_client;
extern int	buildlog_http_max_answer_bytes;
extern int	buildlog_http_max_stream_bytes;
extern int	buildlog_http_rate_limit;
extern int	buildlog_http_rate_burst;
extern int	buildlog_http_flush_ms;

/* S3 archive (checked and read by extension/s3_settings.c) */
extern char *buildlog_s3_endpoint;
extern char *buildlog_s3_bucket;
extern char *buildlog_s3_region;
extern char *buildlog_s3_access_key;
extern char *buildlog_s3_secret_key;
extern char *buildlog_s3_prefix;
extern bool buildlog_s3_path_style;
extern bool buildlog_s3_adopt_objects;
extern int	buildlog_s3_timeout_s;
extern int	buildlog_s3_request_timeout_ms;
extern char *buildlog_s3_access_key_file;
extern char *buildlog_s3_secret_key_file;
extern int	buildlog_archive_compression;

/* values of buildlog.archive_compression */
typedef enum BuildlogCompression
{
	BUILDLOG_COMPRESSION_NONE,
	BUILDLOG_COMPRESSION_GZIP
} BuildlogCompression;

#define BUILDLOG_MAX_DRAIN_WORKERS_GUC 64

/* AMQP's limit on a queue name (a shortstr), in bytes. */
#define BUILDLOG_QUEUE_NAME_MAX 255

extern void buildlog_define_gucs(void);

/* buildlog.amqp_queues as a List of palloc'd names; NIL and *problem if invalid. */
struct List;
extern struct List *buildlog_split_queues(const char *value, char **problem);

#endif							/* BUILDLOG_GUC_H */
