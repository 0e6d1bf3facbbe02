/*-------------------------------------------------------------------------
 * metrics.h
 *	  GET /metrics (metrics.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_HTTP_METRICS_H
#define BUILDLOG_HTTP_METRICS_H

#include "http/server.h"

/* Step: GET /metrics into the HttpResponse arg (metrics.c). */
extern int	buildlog_http_metrics_step(BuildlogWorker *w, void *arg);

#endif							/* BUILDLOG_HTTP_METRICS_H */
