/*-------------------------------------------------------------------------
 * mailbox.c
 *	  Shared memory of the HTTP worker's mailbox (see mailbox.h): requested
 *	  and set up by the HTTP wing, not by the library.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "http/mailbox.h"

HttpReadShared *buildlog_http_mailbox = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The hooks chain as extension/shmem.c's do (PostgreSQL's pattern, repeated
 * on purpose: the wing's shared memory stays private to the wing).
 */

/* shmem_request_hook: room for the mailbox. */
static void
mailbox_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HttpReadShared)));
}

/* shmem_startup_hook: the mailbox, empty at the first attach. */
static void
mailbox_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	buildlog_http_mailbox = ShmemInitStruct("buildlog http mailbox", sizeof(HttpReadShared), &found);
	if (!found)
	{
		memset(buildlog_http_mailbox, 0, sizeof(HttpReadShared));
		SpinLockInit(&buildlog_http_mailbox->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
buildlog_http_mailbox_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = mailbox_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mailbox_startup;
}
