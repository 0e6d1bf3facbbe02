# buildlog: PGXS build of one module, buildlog.so
MODULE_big = buildlog
# extension/: the library and the SQL surface; bgworker/: only the workers
# (the layering rule in the README; script/check-layering enforces it)
OBJS = \
	extension/buildlog.o \
	extension/guc.o \
	extension/shmem.o \
	extension/stats.o \
	extension/utf8.o \
	extension/wire.o \
	extension/wire_scan.o \
	extension/wire_json.o \
	extension/wire_base64.o \
	extension/joblock.o \
	extension/spiutil.o \
	extension/merge.o \
	extension/ingest.o \
	extension/mask.o \
	extension/seal.o \
	extension/job_secrets.o \
	extension/aggregate.o \
	extension/read.o \
	extension/set_content.o \
	extension/stream_offsets.o \
	extension/redact.o \
	extension/rejected.o \
	extension/amqp_client.o \
	extension/declare_queues.o \
	extension/secret.o \
	extension/s3_payload.o \
	extension/s3.o \
	extension/s3_settings.o \
	extension/s3_selftest.o \
	extension/s3_sql.o \
	extension/restore.o \
	extension/old_entry_points.o \
	extension/ansi.o \
	extension/live.o \
	extension/token.o \
	bgworker/register.o \
	bgworker/worker.o \
	bgworker/drain.o \
	bgworker/scheduler.o \
	bgworker/archive.o \
	bgworker/http/server.o \
	bgworker/http/metrics.o \
	bgworker/http/auth.o \
	bgworker/http/events.o \
	bgworker/http/uploads.o \
	bgworker/http/limits.o \
	bgworker/http/stream_upload.o \
	bgworker/http/reads.o \
	bgworker/http/reader_pool.o \
	bgworker/http/mailbox.o \
	bgworker/http/work_kinds.o \
	bgworker/http/viewer.o \
	bgworker/http/travis_api.o

MODULEDIR = extension
DATA = extension/buildlog.control $(wildcard sql/buildlog--*.sql)
PGFILEDESC = "buildlog - CI build logs inside PostgreSQL"

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test/out
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/out_iso

PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/bgworker -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers $(JANSSON_CFLAGS)
# jansson: the JSON parser of message and upload bodies (extension/wire_json.c,
# bgworker/http/travis_api.c)
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS := $(or $(shell pkg-config --libs jansson 2>/dev/null),-ljansson)
SHLIB_LINK = -lrabbitmq -lcurl -lcrypto -lz -lmicrohttpd $(JANSSON_LIBS)
EXTRA_CLEAN = test/out test/out_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header
# changes (a struct seen with two layouts corrupts memory)
HEADERS = $(wildcard extension/*.h bgworker/*.h bgworker/http/*.h)
$(OBJS): $(HEADERS)

# the log viewer's page, script and style sheet (viewer/), served by the HTTP
# worker from SHAREDIR/buildlog/viewer
VIEWER_FILES = $(wildcard $(srcdir)/viewer/*.html $(srcdir)/viewer/*.js $(srcdir)/viewer/*.css)
install: install-viewer
install-viewer:
	$(MKDIR_P) '$(DESTDIR)$(datadir)/buildlog/viewer'
	$(INSTALL_DATA) $(VIEWER_FILES) '$(DESTDIR)$(datadir)/buildlog/viewer/'
uninstall: uninstall-viewer
uninstall-viewer:
	rm -rf '$(DESTDIR)$(datadir)/buildlog/viewer'
.PHONY: install-viewer uninstall-viewer
