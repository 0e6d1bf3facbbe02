/*-------------------------------------------------------------------------
 * secret.c
 *	  Secrets read from files named by superuser-only settings (S3 keys, the
 *	  token key): the bytes never pass through postgresql.conf or the log.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "storage/fd.h"

#include "secret.h"

#define SECRET_FILE_MAX 4096	/* a key file larger than this is not a key */

char *
buildlog_read_secret_file(const char *setting, const char *path)
{
	char		buf[SECRET_FILE_MAX + 1];
	int			fd;
	ssize_t		n;
	Size		len = 0;
	char	   *start;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" named by %s: %m", path, setting),
				 errhint("The file must be readable by the PostgreSQL server's operating system user.")));
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0)
	{
		if (n < 0)
		{
			int			save = errno;

			CloseTransientFile(fd);
			explicit_bzero(buf, sizeof(buf));
			errno = save;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\" named by %s: %m", path, setting)));
		}
		len += n;
	}
	CloseTransientFile(fd);
	if (len > SECRET_FILE_MAX)
	{
		explicit_bzero(buf, sizeof(buf));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file \"%s\" named by %s is too large for a key", path, setting),
				 errdetail("A key file may have at most %d bytes.", SECRET_FILE_MAX)));
	}
	buf[len] = '\0';
	start = buf;
	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
		start++;
	while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
					   buf[len - 1] == '\r' || buf[len - 1] == '\n'))
		buf[--len] = '\0';
	if (*start == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file \"%s\" named by %s is empty", path, setting)));
	start = pstrdup(start);
	explicit_bzero(buf, sizeof(buf));
	return start;
}
