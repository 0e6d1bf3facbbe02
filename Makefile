# buildlog: PGXS build of one module, buildlog.so
MODULE_big = buildlog
OBJS = \
	extension/buildlog.o \
	extension/guc.o \
	extension/utf8.o \
	extension/joblock.o \
	extension/spiutil.o \
	extension/assemble.o \
	extension/ingest.o \
	extension/aggregate.o \
	extension/read.o \
	extension/content.o \
	extension/rejected.o \
	extension/queues.o \
	extension/s3payload.o \
	extension/s3client.o \
	extension/s3sql.o \
	extension/restore.o \
	extension/redact.o \
	bgworker/shmem.o \
	bgworker/worker.o \
	bgworker/amqp_link.o \
	bgworker/message.o \
	bgworker/scan.o \
	bgworker/wire_ref.o \
	bgworker/base64.o \
	bgworker/drain.o \
	bgworker/scheduler.o \
	bgworker/archive.o

MODULEDIR = extension
DATA = extension/buildlog.control $(wildcard sql/buildlog--*.sql)
PGFILEDESC = "buildlog - CI build logs inside PostgreSQL"

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test/out
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/out_iso

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers
SHLIB_LINK = -lrabbitmq -lcurl -lcrypto -lz
EXTRA_CLEAN = test/out test/out_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
