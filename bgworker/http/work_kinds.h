/*-------------------------------------------------------------------------
 * work_kinds.h
 *	  The kinds of work the helper processes run (work_kinds.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_WORK_KINDS_H
#define BUILDLOG_HTTP_WORK_KINDS_H

#include "http/server.h"

/*
 * A kind of work the helper processes run (work_kinds.c): its name; run,
 * in a helper, answers it into r; done, in the HTTP worker, takes the
 * answer of slot i for its owner (NULL: the waiting connection is resumed
 * to send it).
 */
typedef struct HttpWorkKind
{
	const char *name;
	void		(*run) (BuildlogWorker *w, const HttpReadArgs *args, int requester,
						HttpResponse *r);
	void		(*done) (HttpWorker *h, void *owner, int i);
} HttpWorkKind;

extern const HttpWorkKind *buildlog_http_work_kind(HttpReadKind kind);

#endif							/* BUILDLOG_HTTP_WORK_KINDS_H */
