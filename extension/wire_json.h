/*-------------------------------------------------------------------------
 * wire_json.h
 *	  jansson, the JSON parser that decides every body the fast scanner
 *	  (wire_scan.h) does not, and every JSON body the HTTP service reads.
 *
 * Kept out of every file that includes utils/builtins.h: jansson's
 * json_object() has the name of a PostgreSQL function (see wire_json.c).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_WIRE_JSON_H
#define BUILDLOG_WIRE_JSON_H

#include "postgres.h"

#include "wire.h"

/*
 * A travis-worker message (wire.c's rules) read by jansson: out->ok with the
 * part, or the reason (jansson's error text and position when it refuses
 * the JSON).  Out of memory is an ERROR; nothing of jansson's outlives the
 * call.
 */
extern void buildlog_json_parse_part(const char *body, size_t len,
									 int max_part_bytes, ParsedPart *out);

/*
 * The body of PUT /jobs/{id}/parts/{number}, travis-logs' log_part
 * ({"@type":"log_part","encoding":"base64"|"utf-8","content":...,
 * "final":...}): out->ok with content and final (job id and number come
 * from the URL), or the reason as a sentence for the 400 (413 when
 * out->too_large).
 */
extern void buildlog_json_parse_log_part(const char *body, size_t len,
										 int max_part_bytes, ParsedPart *out);

#endif							/* BUILDLOG_WIRE_JSON_H */
