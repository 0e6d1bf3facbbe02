/*-------------------------------------------------------------------------
 * secret.h
 *	  Secrets read from files named by superuser-only settings.
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SECRET_H
#define BUILDLOG_SECRET_H

/*
 * The content of the file at path, trimmed of surrounding whitespace
 * (palloc'd).  ERRORs name the setting and the file, never a byte of the
 * content: unreadable, larger than 4 kB, or empty.
 */
extern char *buildlog_read_secret_file(const char *setting, const char *path);

#endif							/* BUILDLOG_SECRET_H */
