/*-------------------------------------------------------------------------
 * http_viewer.c
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
 * Every answer carries a strict Content-Security-Policy: scripts and
 * styles only from this origin, no inline script or style attribute, no
 * plugins, no framing, connections only to this origin.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <microhttpd.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "http.h"

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
	const char *p = url + 6;
	int			digits = 0;

	if (strncmp(url, "/jobs/", 6) != 0 || *p == '0')
		return false;
	for (; isdigit((unsigned char) *p); p++)
		digits++;
	return *p == '\0' && digits > 0 && digits <= 18;
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

bool
buildlog_http_viewer(const char *method, const char *url, struct MHD_Connection *conn,
					 HttpResponse *r)
{
	const char *name;

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
