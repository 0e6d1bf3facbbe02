/*-------------------------------------------------------------------------
 * viewer.c
 *	  The log viewer page: GET /jobs/{id} and its static assets.
 *
 * The page is a static HTML document with its script and style sheet
 * (viewer/ in the source tree), installed by `make install` into
 * SHAREDIR/buildlog/viewer/.  The worker reads an asset on its first
 * request and keeps it (with its ETag, a hash of its bytes) for the life
 * of the process; a restart of the worker picks up a new install.  (The
 * ETag is FNV-1a, not MD5: pg_md5_hash needs a resource owner, which the
 * worker has only inside a transaction, and this is no security check.)  The page
 * itself reads the log through the JSON and SSE endpoints (/parts,
 * /events), so GET /jobs/{id} is the same document for every job, running,
 * aggregated or archived.
 *
 * GET /jobs/{id}/bundle is the page's one read of a log (read by the HTTP
 * readers, reader_pool.c, like /log: a 50 MB log takes them a while): a JSON line
 * {"parts":[[number, bytes, created_at, final], ...]} and then the parts'
 * bytes, concatenated in that order, all from one query (so the sizes and
 * the bytes agree, which a /log read and a /parts read made apart cannot
 * promise).  The page splits the bytes at the sizes: it gets each part's
 * text and arrival time for the price of the raw log, without the JSON
 * escaping of 50 MB of text that GET /jobs/{id}/parts does.  With ?bytes=0
 * it is the index line alone: the page reads the arrival times of the parts
 * it received live (the events carry none) that way.
 *
 * Every answer carries a strict Content-Security-Policy: scripts and
 * styles only from this origin, no inline script or style attribute, no
 * plugins, no framing, connections only to this origin.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include <microhttpd.h>

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "guc.h"
#include "http/viewer.h"
#include "spiutil.h"
#include "worker.h"

#define MAX_ASSETS			8	/* at least the names in asset_names */
#define MAX_ASSET_BYTES		(4 * 1024 * 1024)
#define ASSET_NAME_LEN		32

#define VIEWER_CSP \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* One asset read from the share directory (or found missing). */
typedef struct ViewerAsset
{
	char		name[ASSET_NAME_LEN];
	char	   *bytes;			/* NULL: not there (remembered too) */
	size_t		len;
	char		etag[24];
} ViewerAsset;

static SPIPlanPtr bundle_plan = NULL;
static ViewerAsset assets[MAX_ASSETS];
static int	nassets = 0;
static MemoryContext viewer_cxt = NULL;

/* The Content-Type of an asset, by its name's ending; NULL when not served. */
static const char *
asset_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return NULL;
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	return NULL;
}

/* The files of viewer/ (the Makefile installs them): nothing else is served. */
static const char *const asset_names[] = {
	"index.html", "viewer.js", "ansi.js", "folds.js", "viewer.css", NULL
};

/* Is name one of the viewer's files? */
static bool
asset_name_ok(const char *name)
{
	for (int i = 0; asset_names[i] != NULL; i++)
		if (strcmp(asset_names[i], name) == 0)
			return true;
	return false;
}

/*
 * Read SHAREDIR/buildlog/viewer/<name> into a (remembered) asset; bytes
 * stay NULL when it is missing or unreadable.  Plain reads: no transaction,
 * no ERROR on a missing file.
 */
static void
read_asset(ViewerAsset *a)
{
	char		share[MAXPGPATH];
	char		path[MAXPGPATH * 2];
	struct stat st;
	int			fd;
	size_t		got = 0;
	uint64		hash = UINT64CONST(0xcbf29ce484222325);

	get_share_path(my_exec_path, share);
	snprintf(path, sizeof(path), "%s/buildlog/viewer/%s", share, a->name);
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		ereport(LOG, (errmsg("buildlog http: viewer asset \"%s\" not found: %m", path),
					  errhint("Run make install of buildlog (it installs viewer/ into SHAREDIR/buildlog/viewer).")));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_ASSET_BYTES)
	{
		close(fd);
		ereport(LOG, (errmsg("buildlog http: viewer asset \"%s\" is not a regular file below 4 MB", path)));
		return;
	}
	a->bytes = MemoryContextAlloc(viewer_cxt, st.st_size + 1);
	while (got < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, a->bytes + got, st.st_size - got);

		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	a->len = got;
	for (size_t i = 0; i < a->len; i++)
		hash = (hash ^ (unsigned char) a->bytes[i]) * UINT64CONST(0x100000001b3);
	snprintf(a->etag, sizeof(a->etag), "\"%016" PRIx64 "\"", hash);
}

/* The asset called name, read on first use. */
static ViewerAsset *
find_asset(const char *name)
{
	ViewerAsset *a;

	for (int i = 0; i < nassets; i++)
		if (strcmp(assets[i].name, name) == 0)
			return &assets[i];
	if (nassets >= MAX_ASSETS)
		return NULL;
	if (viewer_cxt == NULL)
		viewer_cxt = AllocSetContextCreate(TopMemoryContext, "buildlog http viewer",
										   ALLOCSET_SMALL_SIZES);
	a = &assets[nassets++];
	memset(a, 0, sizeof(*a));
	strlcpy(a->name, name, sizeof(a->name));
	read_asset(a);
	return a;
}

/* Is url "/jobs/{id}" exactly (a job id of 1 .. 2^63-1)? */
static bool
is_page_path(const char *url)
{
	int64		job_id;
	const char *rest;

	return strncmp(url, "/jobs/", 6) == 0 && strchr(url + 6, '/') == NULL &&
		buildlog_http_job_path(psprintf("%s/", url), &job_id, &rest) && *rest == '\0';
}

/* Answer with an asset: 200 (or 304 for a matching If-None-Match). */
static void
answer_asset(struct MHD_Connection *conn, HttpResponse *r, const char *name)
{
	ViewerAsset *a = find_asset(name);
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
												  MHD_HTTP_HEADER_IF_NONE_MATCH);

	if (a == NULL || a->bytes == NULL)
	{
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found",
							  psprintf("The viewer asset %s is not installed.", name));
		return;
	}
	buildlog_http_add_header(r, "Content-Security-Policy", VIEWER_CSP);
	buildlog_http_add_header(r, "Referrer-Policy", "no-referrer");
	buildlog_http_add_header(r, "X-Frame-Options", "DENY");
	buildlog_http_add_header(r, "ETag", a->etag);
	if (inm != NULL && strcmp(inm, a->etag) == 0)
	{
		buildlog_http_set_body(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0);
		return;
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, asset_type(name), a->bytes, a->len);
}

void
buildlog_http_read_bundle(BuildlogWorker *w, const HttpReadArgs *args, HttpResponse *r)
{
	StringInfoData head;
	MemoryContext old;
	bool		isnull;

	/* (a read opens as reads.c's do, on purpose: a transaction, then one query) */
	if (!buildlog_http_begin_read("buildlog http: GET /jobs/{id}/bundle", r))
		return;
	/* row 0 tells whether the job is known or removed, the parts follow */
	buildlog_run_by_id(&bundle_plan,
					   "select -2, null::text, null::text, false, 0,"
					   "  (select case when l.removed_at is not null and l.content is null"
					   "               then 'removed' else 'known' end"
					   "     from buildlog.logs l where l.job_id = $1)"
					   " union all"
					   " (select p.number, p.content, pg_catalog.to_json(p.created_at)::text,"
					   "   p.final, pg_catalog.octet_length(p.content), null"
					   "  from buildlog.parts($1, -1) p order by p.number)",
					   args->job_id, true, SPI_OK_SELECT);
	old = MemoryContextSwitchTo(w->step_cxt);
	{
		char	   *known = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);

		if (known == NULL || strcmp(known, "removed") == 0)
		{
			buildlog_http_problem(r, known ? MHD_HTTP_GONE : MHD_HTTP_NOT_FOUND,
								  known ? "Gone" : "Not Found",
								  known ? "The log of this job was removed." : "No log is known for this job.");
			MemoryContextSwitchTo(old);
			buildlog_worker_commit_spi();
			return;
		}
	}
	/* the index line, then (a second pass over the rows) the bytes after it */
	initStringInfo(&head);
	appendStringInfoString(&head, "{\"parts\":[");
	for (uint64 i = 1; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int32		number = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		char	   *at = SPI_getvalue(t, d, 3);
		bool		final = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		int32		bytes = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));

		CHECK_FOR_INTERRUPTS();
		appendStringInfo(&head, "%s[%d,%d,%s,%s]", i > 1 ? "," : "", number, bytes,
						 at ? at : "null", final ? "true" : "false");
	}
	appendStringInfoString(&head, "]}\n");
	for (uint64 i = 1; !args->index_only && i < SPI_processed; i++)
	{
		text	   *content = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 2, &isnull));

		CHECK_FOR_INTERRUPTS();
		appendBinaryStringInfo(&head, VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content));
	}
	buildlog_http_set_body(r, MHD_HTTP_OK, "application/octet-stream", head.data, head.len);
	MemoryContextSwitchTo(old);
	buildlog_worker_commit_spi();
	MemoryContextSwitchTo(w->step_cxt);
}

bool
buildlog_http_viewer(HttpWorker *h, const char *method, const char *url,
					 struct MHD_Connection *conn, HttpResponse *r)
{
	const char *name = NULL;

	if (is_page_path(url))
		name = "index.html";
	else if (strncmp(url, "/viewer/", 8) == 0)
		name = url + 8;
	else
		return false;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
	{
		buildlog_http_add_header(r, "Allow", "GET, HEAD");
		buildlog_http_problem(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed",
							  psprintf("%s is not allowed here.", method));
	}
	else if (!asset_name_ok(name))
		buildlog_http_problem(r, MHD_HTTP_NOT_FOUND, "Not Found",
							  psprintf("No resource at %s.", url));
	else
		answer_asset(conn, r, name);
	return true;
}
