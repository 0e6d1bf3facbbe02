/*-------------------------------------------------------------------------
 * rejected.h
 *	  Deliveries kept aside in buildlog.rejected_parts, with their reason.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_REJECTED_H
#define BUILDLOG_REJECTED_H

#include "postgres.h"

#include "utils/array.h"

/*
 * Insert a batch of rejected deliveries (parallel arrays: queue, exchange,
 * routing_key text[], delivery_tag int8[], redelivered bool[], reason
 * text[], body bytea[]).  Connects to SPI itself.
 */
extern void buildlog_store_rejected(Datum *arrays);

#endif							/* BUILDLOG_REJECTED_H */
