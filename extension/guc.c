/*-------------------------------------------------------------------------
 * guc.c
 *	  Definitions of the buildlog.* configuration parameters.
 *
 * Time settings carry units so SQL can read them with
 * current_setting(...)::interval.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <limits.h>

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "amqp_client.h"
#include "guc.h"
#include "s3.h"
#include "shmem.h"

int			buildlog_aggregate_delay_ms = 10 * 1000;
int			buildlog_aggregate_force_after_s = 3 * 3600;
int			buildlog_maintenance_lock_timeout_ms = 100;
int			buildlog_max_part_bytes = 1024 * 1024;
char	   *buildlog_database = NULL;
char	   *buildlog_amqp_url = NULL;
char	   *buildlog_amqp_queues = NULL;
int			buildlog_drain_workers = 2;
int			buildlog_batch_size = 500;
int			buildlog_flush_ms = 20;
int			buildlog_amqp_heartbeat_s = 30;
int			buildlog_batch_bytes = 32 * 1024 * 1024;
char	   *buildlog_amqp_password_file = NULL;
int			buildlog_maintenance_interval_s = 3600;
int			buildlog_rejected_retention_s = 14 * 24 * 3600;
int			buildlog_archive_workers = 1;
int			buildlog_purge_delay_s = 600;
char	   *buildlog_http_listen = NULL;
int			buildlog_http_max_connections = 1000;
int			buildlog_http_timeout_s = 60;
int			buildlog_http_readers = 2;
char	   *buildlog_http_token_key_file = NULL;
char	   *buildlog_secrets_key_file = NULL;
int			buildlog_http_max_body = 16 * 1024 * 1024;
int			buildlog_http_max_answer_bytes = 1024 * 1024;	/* kB */
int			buildlog_http_max_stream_bytes = 0;	/* kB */
bool		buildlog_http_read_tokens = false;
int			buildlog_http_max_connections_per_client = 64;
int			buildlog_http_max_streams_per_client = 32;
int			buildlog_http_rate_limit = 200;
int			buildlog_http_rate_burst = 400;
int			buildlog_http_flush_ms = 200;
char	   *buildlog_s3_endpoint = NULL;
char	   *buildlog_s3_bucket = NULL;
char	   *buildlog_s3_region = NULL;
char	   *buildlog_s3_access_key = NULL;
char	   *buildlog_s3_secret_key = NULL;
char	   *buildlog_s3_prefix = NULL;
bool		buildlog_s3_path_style = true;
bool		buildlog_s3_adopt_objects = false;
int			buildlog_s3_timeout_s = 30;
int			buildlog_s3_request_timeout_ms = 5 * 60 * 1000;
char	   *buildlog_s3_access_key_file = NULL;
char	   *buildlog_s3_secret_key_file = NULL;
int			buildlog_archive_compression = BUILDLOG_COMPRESSION_NONE;

static const struct config_enum_entry compression_options[] = {
	{"none", BUILDLOG_COMPRESSION_NONE, false},
	{"gzip", BUILDLOG_COMPRESSION_GZIP, false},
	{NULL, 0, false}
};

/* SHOW and pg_settings display the AMQP URL without its password. */
static const char *
show_amqp_url(void)
{
	static char buf[1024];

	return buildlog_amqp_redact(buildlog_amqp_url ? buildlog_amqp_url : "",
								buf, sizeof(buf));
}

/*
 * Split buildlog.amqp_queues: comma-separated names taken verbatim (AMQP
 * queue names are case-sensitive and up to 255 bytes), trimmed of
 * whitespace.  Returns the names (palloc'd) or NIL with *problem set.
 */
List *
buildlog_split_queues(const char *value, char **problem)
{
	List	   *names = NIL;
	const char *p = value ? value : "";

	*problem = NULL;
	for (;;)
	{
		const char *end = strchr(p, ',');
		const char *stop = end ? end : p + strlen(p);
		size_t		len;

		while (p < stop && isspace((unsigned char) *p))
			p++;
		while (stop > p && isspace((unsigned char) stop[-1]))
			stop--;
		len = stop - p;
		if (len == 0)
		{
			*problem = psprintf("Entry %d of the list is empty.", list_length(names) + 1);
			return NIL;
		}
		if (len > BUILDLOG_QUEUE_NAME_MAX)
		{
			*problem = psprintf("Entry %d of the list has %zu bytes; AMQP queue names have at most %d.",
								list_length(names) + 1, len, BUILDLOG_QUEUE_NAME_MAX);
			return NIL;
		}
		names = lappend(names, pnstrdup(p, len));
		if (end == NULL)
			return names;
		p = end + 1;
	}
}

/* Refuse empty entries and over-long names in buildlog.amqp_queues. */
static bool
check_amqp_queues(char **newval, void **extra, GucSource source)
{
	char	   *problem;
	List	   *names = buildlog_split_queues(*newval, &problem);

	if (names == NIL)
	{
		GUC_check_errmsg("buildlog.amqp_queues must be a comma-separated list of queue names");
		GUC_check_errdetail("%s", problem);
		GUC_check_errhint("Names are taken verbatim (case-sensitive, no quoting), trimmed of surrounding whitespace.");
		return false;
	}
	list_free_deep(names);
	return true;
}

/* SHOW displays only the first characters of the S3 access key id. */
static const char *
show_s3_access_key(void)
{
	static char buf[16];
	const char *key = buildlog_s3_access_key ? buildlog_s3_access_key : "";

	if (*key == '\0')
		return "";
	snprintf(buf, sizeof(buf), "%.4s****", key);
	return buf;
}

/* SHOW never displays the S3 secret key, only whether it is set. */
static const char *
show_s3_secret_key(void)
{
	return buildlog_s3_secret_key && *buildlog_s3_secret_key ? "********" : "";
}

/* Define every setting once, when the library is loaded. */
/*
 * buildlog.http_listen: empty, or host:port with a literal IPv4 address and
 * a port in 1..65535 (the worker binds exactly that; no name lookups).
 */
static bool
check_http_listen(char **newval, void **extra, GucSource source)
{
	struct in_addr addr;
	char		host[64];
	const char *colon;
	char	   *end;
	long		port;

	if (*newval == NULL || **newval == '\0')
		return true;
	colon = strrchr(*newval, ':');
	if (colon == NULL || colon == *newval || colon - *newval >= (int) sizeof(host))
	{
		GUC_check_errdetail("Expected host:port, e.g. 127.0.0.1:8470.");
		return false;
	}
	memcpy(host, *newval, colon - *newval);
	host[colon - *newval] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (inet_pton(AF_INET, host, &addr) != 1)
	{
		GUC_check_errdetail("\"%s\" is not an IPv4 address.", host);
		return false;
	}
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
	{
		GUC_check_errdetail("The port must be a number from 1 to 65535.");
		return false;
	}
	return true;
}

void
buildlog_define_gucs(void)
{
	DefineCustomIntVariable("buildlog.aggregate_delay",
							"Time after a job's final part before its log is aggregated.",
							NULL,
							&buildlog_aggregate_delay_ms,
							10 * 1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.aggregate_force_after",
							"Time after a job's newest part after which its log is aggregated even without a final part.",
							NULL,
							&buildlog_aggregate_force_after_s,
							3 * 3600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.maintenance_lock_timeout",
							"Longest time partition maintenance may queue for a lock on log_parts before it backs off.",
							"Writers queued behind maintenance wait at most this long.",
							&buildlog_maintenance_lock_timeout_ms,
							100, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.max_part_bytes",
							"Largest log part accepted by ingestion, in bytes after UTF-8 cleaning.",
							NULL,
							&buildlog_max_part_bytes,
							1024 * 1024, 1, MaxAllocSize / 4,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("buildlog.database",
							   "Database the background workers connect to.",
							   "The buildlog extension must be installed there.",
							   &buildlog_database,
							   "postgres",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.amqp_url",
							   "RabbitMQ URL of the drain workers (amqp://user:password@host:port/vhost), or the URLs of a cluster's nodes separated by commas.",
							   "Superuser only; SHOW displays it without its password; not in pg_settings (its reset_val would be raw).",
							   &buildlog_amqp_url,
							   "amqp://guest:guest@127.0.0.1:5672",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, show_amqp_url);
	DefineCustomStringVariable("buildlog.amqp_password_file",
							   "File holding the AMQP password (trimmed), used instead of the one in buildlog.amqp_url.",
							   "Superuser only; read at every connection attempt, so the password never passes through postgresql.conf.",
							   &buildlog_amqp_password_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.http_token_key_file",
							   "File holding the key that signs the HTTP service's job tokens (at least 32 bytes, trimmed).",
							   "Superuser only; read by issue_token() and by the HTTP worker (at start and on reload).",
							   &buildlog_http_token_key_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.secrets_key_file",
							   "File holding the key that encrypts the jobs' registered secrets (at least 32 bytes, trimmed); empty: derived from buildlog.http_token_key_file.",
							   "Superuser only; read whenever a job's secrets are registered or used for masking.",
							   &buildlog_secrets_key_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_max_body",
							"Largest request body the HTTP service accepts (a batch of parts).",
							NULL,
							&buildlog_http_max_body,
							16 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_max_answer_bytes",
							"Most bytes of log answers (GET /jobs/{id}/log, /parts, /bundle) the HTTP service sends at once, all clients together.",
							"A read that would go past it answers 503 with Retry-After; each answer must also go at 64 kB/s at least.",
							&buildlog_http_max_answer_bytes,
							1024 * 1024, 1024, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_max_stream_bytes",
							"Most raw bytes one job's POST /jobs/{id}/stream uploads may store; 0: no limit.",
							"Bytes past it are discarded and the upload answers 413 at its body's end.",
							&buildlog_http_max_stream_bytes,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("buildlog.http_read_tokens",
							 "Whether the HTTP service's reads need a job token (read, write or admin scope).",
							 NULL,
							 &buildlog_http_read_tokens,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_max_connections_per_client",
							"Most connections the HTTP service keeps open from one client address; 0: no cap.",
							"One more is closed at once, before anything is read.",
							&buildlog_http_max_connections_per_client,
							64, 0, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_max_streams_per_client",
							"Most event streams the HTTP service keeps open for one client address; 0: no cap.",
							"One more answers 429 with Retry-After.",
							&buildlog_http_max_streams_per_client,
							32, 0, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_rate_limit",
							"Requests per second the HTTP service accepts from one client address (a token bucket); 0: no limit.",
							"Requests over it answer 429 with Retry-After.",
							&buildlog_http_rate_limit,
							200, 0, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_rate_burst",
							"Requests one client address may send at once above buildlog.http_rate_limit (the bucket's size).",
							NULL,
							&buildlog_http_rate_burst,
							400, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.http_flush_ms",
							"Longest time streamed bytes (POST /jobs/{id}/stream) wait before they are stored as a part.",
							"Counted from the oldest byte not yet stored; a part is also cut every 64 kB.",
							&buildlog_http_flush_ms,
							200, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.amqp_queues",
							   "Comma-separated queues the drain workers consume.",
							   "Workers split the list; with fewer queues than workers, workers share queues.",
							   &buildlog_amqp_queues,
							   "reporting.jobs.logs",
							   PGC_SIGHUP, 0,
							   check_amqp_queues, NULL, NULL);
	DefineCustomIntVariable("buildlog.batch_size",
							"Deliveries a drain worker writes in one transaction at most.",
							"The prefetch count is twice this.",
							&buildlog_batch_size,
							500, 1, 10000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.batch_bytes",
							"Delivery bytes a drain worker writes in one transaction at most.",
							"A batch ends once it holds this much; a single larger delivery is a batch of its own.",
							&buildlog_batch_bytes,
							32 * 1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.flush_ms",
							"Longest time a drain worker holds a batch before writing it.",
							NULL,
							&buildlog_flush_ms,
							20, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.amqp_heartbeat",
							"AMQP heartbeat interval requested by the drain workers (0 disables).",
							NULL,
							&buildlog_amqp_heartbeat_s,
							30, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	/* S3 archive; the keys stay out of pg_settings (its reset_val is raw) */
	DefineCustomStringVariable("buildlog.s3_endpoint",
							   "S3 endpoint URL: http(s)://host[:port][/path], without the bucket.",
							   "Empty disables archiving and fetching from S3.",
							   &buildlog_s3_endpoint,
							   "",
							   PGC_SUSET, 0,
							   buildlog_s3_check_endpoint, NULL, NULL);
	DefineCustomStringVariable("buildlog.s3_bucket",
							   "S3 bucket that holds the archived logs.",
							   NULL,
							   &buildlog_s3_bucket,
							   "buildlog",
							   PGC_SUSET, 0,
							   buildlog_s3_check_bucket, NULL, NULL);
	DefineCustomStringVariable("buildlog.s3_region",
							   "Region used to sign S3 requests (AWS Signature V4).",
							   NULL,
							   &buildlog_s3_region,
							   "us-east-1",
							   PGC_SUSET, 0,
							   buildlog_s3_check_region, NULL, NULL);
	DefineCustomStringVariable("buildlog.s3_access_key",
							   "S3 access key id.",
							   "Superuser only; SHOW displays its first characters.",
							   &buildlog_s3_access_key,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, show_s3_access_key);
	DefineCustomStringVariable("buildlog.s3_secret_key",
							   "S3 secret access key.",
							   "Superuser only; never displayed.",
							   &buildlog_s3_secret_key,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, show_s3_secret_key);
	DefineCustomStringVariable("buildlog.s3_access_key_file",
							   "File holding the S3 access key id (trimmed); overrides buildlog.s3_access_key.",
							   "Superuser only; read when a key is needed, its content never shown or logged.",
							   &buildlog_s3_access_key_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.s3_secret_key_file",
							   "File holding the S3 secret access key (trimmed); overrides buildlog.s3_secret_key.",
							   "Superuser only; read when a key is needed, its content never shown or logged.",
							   &buildlog_s3_secret_key_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("buildlog.s3_prefix",
							   "Prefix of the archive's object keys: <prefix>jobs/<job_id>/log.txt.",
							   "Give the trailing slash yourself (e.g. 'buildlog/').",
							   &buildlog_s3_prefix,
							   "",
							   PGC_SUSET, 0,
							   buildlog_s3_check_prefix, NULL, NULL);
	DefineCustomBoolVariable("buildlog.s3_path_style",
							 "Address S3 objects as endpoint/bucket/key (path style) instead of bucket.endpoint/key.",
							 NULL,
							 &buildlog_s3_path_style,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("buildlog.s3_adopt_objects",
							 "Let the archive workers overwrite and delete objects another buildlog deployment wrote (taking a bucket over).",
							 "Off: an object whose x-amz-meta-buildlog-owner names another deployment (a restored copy, a clone with its own installation id) is never overwritten or deleted.",
							 &buildlog_s3_adopt_objects,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.s3_timeout",
							"Longest time an S3 request may take to connect, or may make no progress.",
							NULL,
							&buildlog_s3_timeout_s,
							30, 1, 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.s3_request_timeout",
							"Longest total time of one S3 request (connect, transfer, response).",
							"A slow but moving transfer is cut off too; size it for the largest log.",
							&buildlog_s3_request_timeout_ms,
							5 * 60 * 1000, 100, 24 * 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("buildlog.archive_compression",
							 "Compression of archived logs: none, or gzip (stored with Content-Encoding: gzip).",
							 NULL,
							 &buildlog_archive_compression,
							 BUILDLOG_COMPRESSION_NONE,
							 compression_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("buildlog.maintenance_interval",
							"How often the scheduler runs buildlog.run_maintenance() (0 disables).",
							NULL,
							&buildlog_maintenance_interval_s,
							3600, 0, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("buildlog.rejected_retention",
							"How long partition maintenance keeps rows of buildlog.rejected_parts (0 keeps them forever).",
							"Rows older than this, replayed or not, are deleted by buildlog.run_maintenance().",
							&buildlog_rejected_retention_s,
							14 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("buildlog.purge_delay",
							"Time after archiving before a log is verified and purged from the database.",
							"Late parts arriving within it are merged without a restore from S3.",
							&buildlog_purge_delay_s,
							600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * Worker counts exist only when preloaded: PostgreSQL refuses (FATAL) to
	 * define a PGC_POSTMASTER setting in a backend that loads the library
	 * later, and without the preload no worker runs anyway.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("buildlog.drain_workers",
								"Number of drain background workers.",
								NULL,
								&buildlog_drain_workers,
								2, 0, BUILDLOG_MAX_DRAIN_WORKERS_GUC,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("buildlog.archive_workers",
								"Number of archive background workers (0 disables archiving).",
								NULL,
								&buildlog_archive_workers,
								1, 0, 16,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		DefineCustomStringVariable("buildlog.http_listen",
								   "Address and port of the HTTP service (host:port, a literal IPv4 address, the default 127.0.0.1:8470); empty disables it.",
								   NULL,
								   &buildlog_http_listen,
								   "127.0.0.1:8470",
								   PGC_POSTMASTER, 0,
								   check_http_listen, NULL, NULL);
		DefineCustomIntVariable("buildlog.http_max_connections",
								"Most connections the HTTP service keeps open at once.",
								NULL,
								&buildlog_http_max_connections,
								1000, 1, 100000,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("buildlog.http_timeout",
								"An HTTP connection idle (or sending nothing) this long is closed; also the deadline of a request's headers, and of a bounded upload's body, however slowly bytes trickle in.",
								NULL,
								&buildlog_http_timeout_s,
								60, 1, 3600,
								PGC_POSTMASTER, GUC_UNIT_S,
								NULL, NULL, NULL);
		DefineCustomIntVariable("buildlog.http_readers",
								"Reader processes that answer the HTTP service's log and parts reads.",
								"They keep slow reads (big logs, purged logs fetched from S3) off the worker that serves every connection; 0 reads inline.",
								&buildlog_http_readers,
								2, 0, BUILDLOG_MAX_HTTP_READERS,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("buildlog");
}
