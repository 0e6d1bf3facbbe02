/*-------------------------------------------------------------------------
 * ansi.h
 *	  Stripping ANSI escape sequences from log text (the ?deansi=1 read).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_ANSI_H
#define BUILDLOG_ANSI_H

#include <stddef.h>

/*
 * Copy len bytes of in to out without ANSI escapes: CSI (ESC [ ... final
 * byte), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, and a lone
 * ESC.  out needs len bytes; returns the bytes written.  UTF-8 text stays
 * UTF-8 (escapes are ASCII).
 */
extern size_t buildlog_strip_ansi(const char *in, size_t len, char *out);

#endif							/* BUILDLOG_ANSI_H */
