/*-------------------------------------------------------------------------
 * seal.c
 *	  The jobs' secrets sealed at rest: AES-256-GCM under a key derived
 *	  (HMAC-SHA256) from the file named by buildlog.secrets_key_file, or by
 *	  buildlog.http_token_key_file when that is empty, with the job id as
 *	  associated data (a sealed value moved to another job does not open).
 *	  A sealed value is nonce (12 bytes) || ciphertext || tag (16 bytes).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "guc.h"
#include "seal.h"
#include "secret.h"

#define SECRETS_KEY_FILE_MIN 32

/* Which setting names the key file; NULL when neither is set. */
const char *
buildlog_secrets_key_setting(const char **path)
{
	if (buildlog_secrets_key_file && buildlog_secrets_key_file[0] != '\0')
	{
		*path = buildlog_secrets_key_file;
		return "buildlog.secrets_key_file";
	}
	if (buildlog_http_token_key_file && buildlog_http_token_key_file[0] != '\0')
	{
		*path = buildlog_http_token_key_file;
		return "buildlog.http_token_key_file";
	}
	return NULL;
}

/* The AES key: HMAC-SHA256 of a fixed label under the key file's bytes. */
void
buildlog_secrets_key(unsigned char *key)
{
	const char *path = NULL;
	const char *setting = buildlog_secrets_key_setting(&path);
	char	   *raw;
	unsigned int keylen = 0;
	static const char label[] = "buildlog job secrets v1";
	bool		ok;

	if (setting == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no key to encrypt the jobs' secrets"),
				 errdetail("Neither buildlog.secrets_key_file nor buildlog.http_token_key_file is set."),
				 errhint("Put at least %d random bytes into a file readable by the server only (e.g. openssl rand -hex 32), name it in buildlog.secrets_key_file and reload.",
						 SECRETS_KEY_FILE_MIN)));
	raw = buildlog_read_secret_file(setting, path);
	if (strlen(raw) < SECRETS_KEY_FILE_MIN)
	{
		explicit_bzero(raw, strlen(raw));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key in \"%s\" named by %s is too short", path, setting),
				 errdetail("A key needs at least %d bytes.", SECRETS_KEY_FILE_MIN),
				 errhint("Generate one with: openssl rand -hex 32")));
	}
	ok = HMAC(EVP_sha256(), raw, (int) strlen(raw), (const unsigned char *) label,
			  sizeof(label) - 1, key, &keylen) != NULL && keylen == SECRETS_KEY_LEN;
	explicit_bzero(raw, strlen(raw));
	pfree(raw);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive the key of the jobs' secrets")));
}

/* The job id as GCM associated data (big-endian). */
static void
job_aad(int64 job_id, unsigned char *aad)
{
	for (int i = 0; i < 8; i++)
		aad[i] = (unsigned char) ((uint64) job_id >> (56 - 8 * i));
}

/*
 * AES-256-GCM over in (len bytes) into out, with the tag written (encrypt)
 * or checked (decrypt).  Returns false on any failure; never throws with
 * the OpenSSL context allocated.
 */
static bool
gcm(bool encrypt, const unsigned char *key, const unsigned char *nonce, int64 job_id,
	const unsigned char *in, int len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char aad[8];
	int			outl = 0;
	int			finl = 0;
	bool		ok;

	if (ctx == NULL)
		return false;
	job_aad(job_id, aad);
	if (encrypt)
		ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) == 1 &&
			EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
			EVP_EncryptUpdate(ctx, NULL, &outl, aad, sizeof(aad)) == 1 &&
			EVP_EncryptUpdate(ctx, out, &outl, in, len) == 1 &&
			EVP_EncryptFinal_ex(ctx, out + outl, &finl) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1;
	else
		ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) == 1 &&
			EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
			EVP_DecryptUpdate(ctx, NULL, &outl, aad, sizeof(aad)) == 1 &&
			EVP_DecryptUpdate(ctx, out, &outl, in, len) == 1 &&
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) == 1 &&
			EVP_DecryptFinal_ex(ctx, out + outl, &finl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* nonce || ciphertext || tag of one secret, as a bytea. */
bytea *
buildlog_seal(const unsigned char *key, int64 job_id, const char *value, int len)
{
	bytea	   *out = palloc(VARHDRSZ + SEAL_NONCE_LEN + len + SEAL_TAG_LEN);
	unsigned char *p = (unsigned char *) VARDATA(out);

	SET_VARSIZE(out, VARHDRSZ + SEAL_NONCE_LEN + len + SEAL_TAG_LEN);
	if (!pg_strong_random(p, SEAL_NONCE_LEN) ||
		!gcm(true, key, p, job_id, (const unsigned char *) value, len,
			 p + SEAL_NONCE_LEN, p + SEAL_NONCE_LEN + len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encrypt a secret of job " INT64_FORMAT, job_id)));
	return out;
}

/* The plain value of a sealed secret (palloc'd, NUL-terminated). */
char *
buildlog_unseal(const unsigned char *key, int64 job_id, bytea *sealed, int *len)
{
	unsigned char *p = (unsigned char *) VARDATA_ANY(sealed);
	int			total = VARSIZE_ANY_EXHDR(sealed);
	char	   *out;

	*len = total - SEAL_NONCE_LEN - SEAL_TAG_LEN;
	out = palloc(Max(*len, 0) + 1);
	if (*len < 0 ||
		!gcm(false, key, p, job_id, p + SEAL_NONCE_LEN, *len, (unsigned char *) out,
			 p + SEAL_NONCE_LEN + *len))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt the secrets of job " INT64_FORMAT, job_id),
				 errdetail("The key file changed since they were registered, or the row was altered."),
				 errhint("Restore the key file the secrets were registered with, or delete the job's rows from buildlog.job_secrets and register them again.")));
	out[*len] = '\0';
	return out;
}
