/*-------------------------------------------------------------------------
 * travis_api.h
 *	  travis-logs' HTTP API on buildlog's HTTP worker (travis_api.c):
 *	  travis-worker's HTTP log part sink (POST /log-parts/multi) and the
 *	  web API travis-api reads and sets logs through (/logs/..., GET
 *	  /log-parts/{job}).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_TRAVIS_API_H
#define BUILDLOG_HTTP_TRAVIS_API_H

#include "http/reads.h"
#include "http/server.h"

/*
 * Route a request of travis-logs' paths (/logs/..., /log-parts/...): true
 * when it is one (answer in r, or *reading: its body comes, or *queued: a
 * reader answers it), false for any other path.
 */
extern bool buildlog_travis_route(HttpWorker *h, struct MHD_Connection *conn,
								  const char *method, const char *url, HttpResponse *r,
								  void **state, bool *reading, bool *queued);

/*
 * The access handler called again for a travis upload (state of kind
 * HTTP_KIND_TRAVIS): a slice of its body, or its end; returns an
 * MHD_Result.
 */
extern int	buildlog_travis_body(HttpWorker *h, struct MHD_Connection *conn, void *state,
								 const char *data, size_t *size, HttpResponse *r);

/* libmicrohttpd is done with a travis upload: free its state. */
extern void buildlog_travis_free(void *state);

/* (Re)read buildlog.travis_token_file (at start and after a reload); says why not once. */
extern void buildlog_travis_load_token(HttpWorker *h);

/* Step: answer a travis read (HTTP_READ_TRAVIS_*) from the read path. */
extern int	buildlog_travis_read_step(BuildlogWorker *w, void *arg);

#endif							/* BUILDLOG_HTTP_TRAVIS_API_H */
