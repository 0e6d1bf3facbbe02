/*-------------------------------------------------------------------------
 * seal.h
 *	  Sealing the jobs' secrets at rest (AES-256-GCM, the job id bound).
 *-------------------------------------------------------------------------
 */
#ifndef BUILDLOG_SEAL_H
#define BUILDLOG_SEAL_H

#include "postgres.h"

#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SECRETS_KEY_LEN 32

/* Which setting names the key file (*path its value); NULL when neither is set. */
extern const char *buildlog_secrets_key_setting(const char **path);

/* The AES key (SECRETS_KEY_LEN bytes) into key; ERRORs name the file, never a byte of it. */
extern void buildlog_secrets_key(unsigned char *key);

/* nonce || ciphertext || tag of one value, as a bytea (palloc'd). */
extern bytea *buildlog_seal(const unsigned char *key, int64 job_id, const char *value, int len);

/* The plain value of a sealed one (palloc'd, NUL-terminated); XX001 when it does not open. */
extern char *buildlog_unseal(const unsigned char *key, int64 job_id, bytea *sealed, int *len);

#endif							/* BUILDLOG_SEAL_H */
