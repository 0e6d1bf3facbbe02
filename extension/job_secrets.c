/*-------------------------------------------------------------------------
 * job_secrets.c
 *	  Registered secrets: stored encrypted, used to mask every text written
 *	  for their job, dropped with the job's log.
 *
 * A secret is sealed with AES-256-GCM under a key derived from the file
 * named by buildlog.secrets_key_file (or, when that is empty, from the
 * token key file), with the job id as associated data: a reader of the
 * table sees only ciphertext, and a sealed value moved to another job no
 * longer opens.  The table is read and written as its owner, so roles that
 * write parts need no privilege on it (and cannot read it).
 *
 * Consistency with writers: add_secrets() takes the job's exclusive lock,
 * every ingest batch the jobs' shared locks before it reads the secrets,
 * so a part is either stored before the registration (and masked by it)
 * or masked on its way in.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "guc.h"
#include "job_secrets.h"
#include "joblock.h"
#include "restore.h"
#include "seal.h"
#include "spiutil.h"

PG_FUNCTION_INFO_V1(buildlog_add_secrets);


static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr store_plan = NULL;
static SPIPlanPtr forget_plan = NULL;
static SPIPlanPtr row_lock_plan = NULL;
static SPIPlanPtr parts_plan = NULL;
static SPIPlanPtr part_update_plan = NULL;
static SPIPlanPtr log_update_plan = NULL;

/* The plain secrets of one job. */
typedef struct SecretList
{
	int64		job_id;
	int			n;
	int			cap;
	char	  **values;
	int		   *lens;
	int			nstored;		/* the first nstored are in the table */
	MaskSet    *set;			/* compiled on first use */
} SecretList;

/* The table's oid, InvalidOid before the schema has it (0.3.1). */
static Oid
secrets_relid(void)
{
	Oid			nsp = get_namespace_oid("buildlog", true);

	return OidIsValid(nsp) ? get_relname_relid("job_secrets", nsp) : InvalidOid;
}

/*
 * Act as the table's owner until restore_user(); an error in between is
 * undone by the transaction's abort.
 */
static void
become_owner(Oid relid, Oid *save_user, int *save_sec)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

static void
restore_user(Oid save_user, int save_sec)
{
	SetUserIdAndSecContext(save_user, save_sec);
}

/*
 * Has any of the sorted jobs a secret?  One probe of the table's index per
 * job, without SPI or a plan: what a batch of jobs without secrets costs.
 * Reads with a snapshot taken now, after the jobs' locks.
 */
static bool
any_secrets(Oid relid, const int64 *jobs, int njobs)
{
	Oid			nsp = get_rel_namespace(relid);
	Oid			index = get_relname_relid("job_secrets_job_id", nsp);
	AttrNumber	attno = get_attnum(relid, "job_id");	/* a heap column number */
	Relation	rel;
	Relation	irel;
	Snapshot	snap;
	bool		found = false;

	if (!OidIsValid(index) || attno == InvalidAttrNumber)
		return true;			/* no index to ask: the SPI lookup answers */
	rel = table_open(relid, AccessShareLock);
	irel = index_open(index, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	for (int i = 0; i < njobs && !found; i++)
	{
		ScanKeyData key;
		SysScanDesc scan;

		ScanKeyInit(&key, attno, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(jobs[i]));
		scan = systable_beginscan_ordered(rel, irel, snap, 1, &key);
		found = HeapTupleIsValid(systable_getnext_ordered(scan, ForwardScanDirection));
		systable_endscan_ordered(scan);
	}
	UnregisterSnapshot(snap);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

static MaskSet *list_set(SecretList *l);

/* Append a value (copied) to a list. */
static void
list_add(SecretList *l, const char *value, int len)
{
	if (l->n == l->cap)
	{
		l->cap = Max(l->cap * 2, 8);
		l->values = l->values ? repalloc(l->values, sizeof(char *) * l->cap)
			: palloc(sizeof(char *) * l->cap);
		l->lens = l->lens ? repalloc(l->lens, sizeof(int) * l->cap)
			: palloc(sizeof(int) * l->cap);
	}
	l->values[l->n] = pnstrdup(value, len);
	l->lens[l->n] = len;
	l->n++;
	l->set = NULL;
}

/* Does the list hold this value already? */
static bool
list_has(const SecretList *l, const char *value, int len)
{
	for (int i = 0; i < l->n; i++)
		if (l->lens[i] == len && memcmp(l->values[i], value, len) == 0)
			return true;
	return false;
}

/* The job ids as an int8[] Datum, the parameter of the lookups. */
static Datum
jobs_array(const int64 *jobs, int njobs)
{
	Datum	   *d = palloc(sizeof(Datum) * njobs);

	for (int i = 0; i < njobs; i++)
		d[i] = Int64GetDatum(jobs[i]);
	return PointerGetDatum(construct_array(d, njobs, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * Decrypt the stored secrets of the sorted jobs, one list per job that has
 * some, in job order, allocated in cxt.  SPI connected, as the owner.
 */
static int
decrypt_lists(const int64 *jobs, int njobs, MemoryContext cxt, SecretList **out)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];
	unsigned char key[SECRETS_KEY_LEN];
	SecretList *lists;
	int			n = 0;
	MemoryContext old;

	values[0] = jobs_array(jobs, njobs);
	buildlog_run(buildlog_plan(&load_plan,
							   "select job_id, sealed from buildlog.job_secrets"
							   " where job_id operator(pg_catalog.=) any ($1) order by job_id, id",
							   1, types),
				 values, NULL, false, SPI_OK_SELECT);
	*out = NULL;
	if (SPI_processed == 0)
		return 0;
	buildlog_secrets_key(key);
	old = MemoryContextSwitchTo(cxt);
	lists = palloc0(sizeof(SecretList) * SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		job = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));
		bytea	   *sealed = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc, 2, &isnull));
		int			len;
		char	   *value;

		if (n == 0 || lists[n - 1].job_id != job)
			lists[n++].job_id = job;
		value = buildlog_unseal(key, job, sealed, &len);
		if (!list_has(&lists[n - 1], value, len))
			list_add(&lists[n - 1], value, len);
		explicit_bzero(value, len);
		pfree(value);
		lists[n - 1].nstored = lists[n - 1].n;
	}
	MemoryContextSwitchTo(old);
	explicit_bzero(key, sizeof(key));
	*out = lists;
	return n;
}

/*
 * This backend's decrypted and compiled secrets, per job, with the row
 * count and highest row id they were read at: a batch checks them with one
 * grouped index lookup and decrypts only what changed.  Emptied when the
 * key file setting changes, or when it has held CACHE_MAX_JOBS jobs.
 */
typedef struct CachedJob
{
	int64		job_id;			/* hash key */
	int64		rows;
	int64		max_id;
	SecretList	list;			/* set compiled */
} CachedJob;

#define CACHE_MAX_JOBS 1024

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;
static char *cache_key_path = NULL;
static int	cache_built = 0;

/* Empty the cache (its memory too), e.g. the key changed. */
static void
cache_reset(void)
{
	HASHCTL		ctl;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "buildlog job secrets",
										  ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(cache_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(CachedJob);
	ctl.hcxt = cache_cxt;
	cache = hash_create("buildlog job secrets", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	cache_key_path = NULL;
	cache_built = 0;
}

/* The cache, emptied first when the key file setting is not the one it was filled under. */
static void
cache_check(void)
{
	const char *path = "";

	(void) buildlog_secrets_key_setting(&path);
	if (cache == NULL || cache_built >= CACHE_MAX_JOBS ||
		cache_key_path == NULL || strcmp(cache_key_path, path) != 0)
	{
		cache_reset();
		cache_key_path = MemoryContextStrdup(cache_cxt, path);
	}
}

/* A copy of a cached list whose arrays the caller may grow. */
static SecretList
secret_list_copy(const SecretList *from)
{
	SecretList	l = *from;

	l.cap = Max(from->n, 1);
	l.values = palloc(sizeof(char *) * l.cap);
	l.lens = palloc(sizeof(int) * l.cap);
	memcpy(l.values, from->values, sizeof(char *) * from->n);
	memcpy(l.lens, from->lens, sizeof(int) * from->n);
	return l;
}

/*
 * The stored secrets of the sorted jobs, one list per job that has some,
 * in job order, allocated in cxt (the values and compiled sets are the
 * cache's).  SPI connected, acting as the owner.
 */
static int
load_lists(const int64 *jobs, int njobs, MemoryContext cxt, SecretList **out)
{
	static SPIPlanPtr stat_plan = NULL;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];
	int64	   *stale;
	int64	   *present;
	int			nstale = 0;
	int			n;
	SecretList *lists;
	SecretList *fresh;
	int			nfresh;

	*out = NULL;
	values[0] = jobs_array(jobs, njobs);
	buildlog_run(buildlog_plan(&stat_plan,
							   "select job_id, pg_catalog.count(*), pg_catalog.max(id)"
							   " from buildlog.job_secrets"
							   " where job_id operator(pg_catalog.=) any ($1)"
							   " group by job_id order by job_id",
							   1, types),
				 values, NULL, false, SPI_OK_SELECT);
	n = (int) SPI_processed;
	if (n == 0)
		return 0;
	cache_check();
	stale = palloc(sizeof(int64) * n);
	present = palloc(sizeof(int64) * n);
	for (int r = 0; r < n; r++)
	{
		bool		isnull;
		HeapTuple	t = SPI_tuptable->vals[r];
		int64		job = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
		int64		rows = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
		int64		max_id = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull));
		bool		found;
		CachedJob  *c = hash_search(cache, &job, HASH_ENTER, &found);

		present[r] = job;
		if (!found || c->rows != rows || c->max_id != max_id)
		{
			c->rows = rows;
			c->max_id = max_id;
			c->list.n = 0;		/* filled below */
			stale[nstale++] = job;
		}
	}
	if (nstale > 0)
	{
		nfresh = decrypt_lists(stale, nstale, cache_cxt, &fresh);
		for (int i = 0; i < nfresh; i++)
		{
			CachedJob  *c = hash_search(cache, &fresh[i].job_id, HASH_FIND, NULL);
			MemoryContext old = MemoryContextSwitchTo(cache_cxt);

			c->list = fresh[i];
			(void) list_set(&c->list);
			MemoryContextSwitchTo(old);
			cache_built++;
		}
	}
	lists = MemoryContextAlloc(cxt, sizeof(SecretList) * n);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		int			m = 0;

		for (int i = 0; i < n; i++)
		{
			CachedJob  *c = hash_search(cache, &present[i], HASH_FIND, NULL);

			if (c != NULL && c->list.n > 0)
				lists[m++] = secret_list_copy(&c->list);
		}
		n = m;
		MemoryContextSwitchTo(old);
	}
	*out = lists;
	return n;
}

/* Seal and insert values [from, n) of a list.  SPI connected, as the owner. */
static void
store_list(SecretList *l, int from)
{
	Oid			types[2] = {INT8OID, BYTEAARRAYOID};
	Datum		values[2];
	Datum	   *sealed;
	unsigned char key[SECRETS_KEY_LEN];

	if (from >= l->n)
		return;
	buildlog_secrets_key(key);
	sealed = palloc(sizeof(Datum) * (l->n - from));
	for (int i = from; i < l->n; i++)
		sealed[i - from] = PointerGetDatum(buildlog_seal(key, l->job_id, l->values[i], l->lens[i]));
	explicit_bzero(key, sizeof(key));
	values[0] = Int64GetDatum(l->job_id);
	values[1] = PointerGetDatum(construct_array(sealed, l->n - from, BYTEAOID, -1, false,
												TYPALIGN_INT));
	buildlog_run(buildlog_plan(&store_plan,
							   "insert into buildlog.job_secrets (job_id, sealed)"
							   " select $1, pg_catalog.unnest($2)",
							   2, types),
				 values, NULL, false, SPI_OK_INSERT);
	l->nstored = l->n;
}

/* The list's compiled set. */
static MaskSet *
list_set(SecretList *l)
{
	if (l->set == NULL)
		l->set = buildlog_mask_compile((const char *const *) l->values, l->lens, l->n);
	return l->set;
}

/* The list of a job in lists (sorted by job id), NULL if none. */
static SecretList *
find_list(SecretList *lists, int n, int64 job_id)
{
	int			lo = 0;
	int			hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (lists[mid].job_id < job_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < n && lists[lo].job_id == job_id) ? &lists[lo] : NULL;
}

/* Order lists by job id. */
static int
cmp_lists(const void *a, const void *b)
{
	int64		x = ((const SecretList *) a)->job_id;
	int64		y = ((const SecretList *) b)->job_id;

	return (x > y) - (x < y);
}

/*
 * Take the values of a part's "::add-mask::" commands into the job's list
 * (creating it).  Values outside the length bounds mask their own command
 * line only.  Returns the (possibly moved) lists array.
 */
static SecretList *
take_commands(SecretList *lists, int *nlists, int *caplists, int64 job_id,
			  const char *data, const MaskSpan *cmds, int ncmds)
{
	SecretList *l = find_list(lists, *nlists, job_id);

	if (l == NULL)
	{
		if (*nlists == *caplists)
		{
			*caplists = Max(*caplists * 2, 4);
			lists = lists ? repalloc(lists, sizeof(SecretList) * *caplists)
				: palloc(sizeof(SecretList) * *caplists);
		}
		memset(&lists[*nlists], 0, sizeof(SecretList));
		lists[*nlists].job_id = job_id;
		(*nlists)++;
		qsort(lists, *nlists, sizeof(SecretList), cmp_lists);
		l = find_list(lists, *nlists, job_id);
	}
	for (int c = 0; c < ncmds; c++)
	{
		int			len = cmds[c].end - cmds[c].start;
		const char *v = data + cmds[c].start;

		if (len >= MASK_SECRET_MIN_LEN && len <= MASK_SECRET_MAX_LEN &&
			l->n < MASK_SECRETS_PER_JOB && !list_has(l, v, len))
			list_add(l, v, len);
	}
	return lists;
}

/* Mask one part: the set's matches plus the command values given. */
static Datum
mask_part(MaskSet *set, const char *data, int32 len, const MaskSpan *cmds, int ncmds,
		  bool *changed)
{
	MaskSpan   *found;
	MaskSpan   *all;
	int			n = buildlog_mask_find(set, data, len, &found);
	char	   *masked;
	int32		outlen;

	*changed = false;
	if (n == 0 && ncmds == 0)
		return (Datum) 0;
	all = palloc(sizeof(MaskSpan) * Max(n + ncmds, 1));
	if (n > 0)
		memcpy(all, found, sizeof(MaskSpan) * n);
	if (ncmds > 0)
		memcpy(all + n, cmds, sizeof(MaskSpan) * ncmds);
	n = buildlog_mask_join(all, n + ncmds);
	masked = buildlog_mask_apply(data, len, all, n, &outlen);
	*changed = true;
	return PointerGetDatum(cstring_to_text_with_len(masked, outlen));
}

ArrayType *
buildlog_mask_batch(ArrayType *job_ids, ArrayType *contents, int n,
					const int64 *jobs, int njobs)
{
	const int64 *ids = (const int64 *) ARR_DATA_PTR(job_ids);
	const char **data = palloc(sizeof(char *) * n);
	int32	   *lens = palloc(sizeof(int32) * n);
	int		   *ncmds = palloc0(sizeof(int) * n);
	MaskSpan  **cmds = palloc0(sizeof(MaskSpan *) * n);
	bool		any_cmd = false;
	char	   *p = ARR_DATA_PTR(contents);
	Oid			relid = secrets_relid();
	SecretList *lists = NULL;
	int			nlists = 0;
	int			caplists;
	Datum	   *out;
	bool		any_changed = false;
	MemoryContext cxt = CurrentMemoryContext;
	Oid			save_user = InvalidOid;
	int			save_sec = 0;

	for (int i = 0; i < n; i++)
	{
		data[i] = VARDATA_ANY(p);
		lens[i] = VARSIZE_ANY_EXHDR(p);
		ncmds[i] = buildlog_mask_commands(data[i], lens[i], &cmds[i]);
		any_cmd |= ncmds[i] > 0;
		p = att_addlength_pointer(p, -1, p);
		p = (char *) att_align_nominal(p, TYPALIGN_INT);
	}
	/* what a batch of jobs without secrets costs: an index probe per job */
	if (OidIsValid(relid) && !any_secrets(relid, jobs, njobs))
		relid = any_cmd ? relid : InvalidOid;
	if (!OidIsValid(relid) && !any_cmd)
		return contents;
	if (OidIsValid(relid))
	{
		SPI_connect();
		become_owner(relid, &save_user, &save_sec);
		nlists = load_lists(jobs, njobs, cxt, &lists);
		if (nlists == 0 && !any_cmd)
		{
			restore_user(save_user, save_sec);
			SPI_finish();
			return contents;
		}
		MemoryContextSwitchTo(cxt);
	}
	caplists = nlists;
	for (int i = 0; i < n; i++)
		if (ncmds[i] > 0)
			lists = take_commands(lists, &nlists, &caplists, ids[i], data[i], cmds[i], ncmds[i]);
	if (OidIsValid(relid))
	{
		/* a command's values are remembered only with a key to seal them */
		const char *path;

		if (any_cmd && buildlog_secrets_key_setting(&path) != NULL)
			for (int l = 0; l < nlists; l++)
				store_list(&lists[l], lists[l].nstored);
		restore_user(save_user, save_sec);
		SPI_finish();
	}

	out = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		SecretList *l = find_list(lists, nlists, ids[i]);
		bool		changed = false;
		Datum		d = (Datum) 0;

		if (l != NULL && (l->n > 0 || ncmds[i] > 0))
			d = mask_part(l->n > 0 ? list_set(l) : NULL, data[i], lens[i], cmds[i],
						  ncmds[i], &changed);
		if (changed)
		{
			out[i] = d;
			any_changed = true;
		}
		else
			out[i] = PointerGetDatum(cstring_to_text_with_len(data[i], lens[i]));
		CHECK_FOR_INTERRUPTS();
	}
	if (!any_changed)
		return contents;
	return construct_array(out, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* The secrets of one job (SPI connected or not), NULL when none. */
static SecretList *
job_list(int64 job_id)
{
	Oid			relid = secrets_relid();
	MemoryContext cxt = CurrentMemoryContext;
	Oid			save_user;
	int			save_sec;
	SecretList *lists;
	int			n;

	if (!OidIsValid(relid) || !any_secrets(relid, &job_id, 1))
		return NULL;
	SPI_connect();
	become_owner(relid, &save_user, &save_sec);
	n = load_lists(&job_id, 1, cxt, &lists);
	restore_user(save_user, save_sec);
	SPI_finish();
	return n > 0 ? &lists[0] : NULL;
}

MaskSet *
buildlog_job_mask(int64 job_id)
{
	SecretList *l = job_list(job_id);

	return l ? list_set(l) : NULL;
}

/* t with the set's matches masked (t itself when nothing matched). */
static text *
mask_text(MaskSet *set, text *t)
{
	MaskSpan   *spans;
	int			n;
	char	   *masked;
	int32		len;

	if (set == NULL)
		return t;
	n = buildlog_mask_find(set, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &spans);
	if (n == 0)
		return t;
	masked = buildlog_mask_apply(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), spans, n, &len);
	return cstring_to_text_with_len(masked, len);
}

text *
buildlog_mask_job_text(int64 job_id, text *t)
{
	return mask_text(buildlog_job_mask(job_id), t);
}

/* Mask a text with its spans and move part offsets (int4 array, in place). */
static text *
mask_with_offsets(MaskSet *set, const char *data, int32 len, ArrayType *starts, bool *changed)
{
	MaskSpan   *spans;
	int			n = buildlog_mask_find(set, data, len, &spans);
	int32	   *s = (int32 *) ARR_DATA_PTR(starts);
	int			nstarts = ArrayGetNItems(ARR_NDIM(starts), ARR_DIMS(starts));
	char	   *masked;
	int32		outlen;

	*changed = n > 0;
	if (n == 0)
		return NULL;
	for (int i = 0; i < nstarts; i++)
		s[i] = buildlog_mask_remap(s[i], spans, n);
	masked = buildlog_mask_apply(data, len, spans, n, &outlen);
	return cstring_to_text_with_len(masked, outlen);
}

void
buildlog_mask_assembled(int64 job_id, AssembledLog *a)
{
	MaskSet    *set = buildlog_job_mask(job_id);
	text	   *masked;
	bool		changed;

	if (set == NULL)
		return;
	masked = mask_with_offsets(set, VARDATA_ANY(a->content), VARSIZE_ANY_EXHDR(a->content),
							   a->starts, &changed);
	if (changed)
		a->content = masked;
}

/*
 * The job id a delivery body names ("id": N), 0 when none is found: a
 * body kept aside may be too broken for the parser, not for this.
 */
static int64
body_job_id(const char *b, int len)
{
	const char *end = b + len;
	const char *p = b;

	while (p < end && (p = memmem(p, end - p, "\"id\"", 4)) != NULL)
	{
		int64		id = 0;
		const char *q = p + 4;

		p = q;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
			q++;
		if (q >= end || *q != ':')
			continue;
		q++;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == '"'))
			q++;
		while (q < end && *q >= '0' && *q <= '9' && id < PG_INT64_MAX / 10)
			id = id * 10 + (*q++ - '0');
		if (id > 0)
			return id;
	}
	return 0;
}

Datum
buildlog_mask_rejected_bodies(Datum bodies)
{
	ArrayType  *arr = DatumGetArrayTypeP(bodies);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	bool		changed = false;

	if (!OidIsValid(secrets_relid()))
		return bodies;
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		bytea	   *b;
		int64		job;
		MaskSet    *set;
		MaskSpan   *spans;
		int			ns;
		char	   *masked;
		int32		len;
		bytea	   *nb;

		if (nulls[i])
			continue;
		b = DatumGetByteaPP(elems[i]);
		job = body_job_id(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
		if (job <= 0 || (set = buildlog_job_mask(job)) == NULL)
			continue;
		ns = buildlog_mask_find(set, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &spans);
		if (ns == 0)
			continue;
		masked = buildlog_mask_apply(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), spans, ns, &len);
		nb = palloc(VARHDRSZ + len);
		SET_VARSIZE(nb, VARHDRSZ + len);
		memcpy(VARDATA(nb), masked, len);
		elems[i] = PointerGetDatum(nb);
		changed = true;
	}
	if (!changed)
		return bodies;
	{
		int			dims[1] = {n};
		int			lbs[1] = {1};

		return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, BYTEAOID, -1,
												  false, TYPALIGN_INT));
	}
}

int
buildlog_job_mask_hold(int64 job_id)
{
	static SPIPlanPtr hold_plan = NULL;
	Oid			relid = secrets_relid();
	Oid			save_user;
	int			save_sec;
	bool		isnull;
	Datum		d;
	int			longest;

	if (!OidIsValid(relid))
		return 0;
	SPI_connect();
	become_owner(relid, &save_user, &save_sec);
	buildlog_run_by_id(&hold_plan,
					   "select max(pg_catalog.octet_length(sealed)) from buildlog.job_secrets"
					   " where job_id operator(pg_catalog.=) $1",
					   job_id, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	longest = isnull ? 0 : DatumGetInt32(d) - SEAL_NONCE_LEN - SEAL_TAG_LEN;
	restore_user(save_user, save_sec);
	SPI_finish();
	/* the URL encoding is the longest form: 3 bytes per byte at most */
	return Max(longest, 0) * 3;
}

void
buildlog_job_secrets_forget(int64 job_id)
{
	Oid			relid = secrets_relid();
	Oid			save_user;
	int			save_sec;

	if (!OidIsValid(relid))
		return;
	become_owner(relid, &save_user, &save_sec);
	buildlog_run_by_id(&forget_plan,
					   "delete from buildlog.job_secrets where job_id operator(pg_catalog.=) $1",
					   job_id, false, SPI_OK_DELETE);
	restore_user(save_user, save_sec);
}

/*
 * Mask the job's parts stored before its secrets were known, and its
 * aggregated text (restored from the archive when purged); returns how
 * many parts (the aggregated text counting as one) changed.  SPI
 * connected, as the owner, under the job's exclusive lock.
 */
static int
mask_stored(int64 job_id, MaskSet *set)
{
	Oid			types[3] = {OIDOID, TIDOID, TEXTOID};
	int			changed = 0;
	StoredLog	log;
	SPITupleTable *parts;
	uint64		nparts;

	buildlog_run_by_id(&parts_plan,
					   "select tableoid, ctid, content from buildlog.log_parts"
					   " where job_id operator(pg_catalog.=) $1",
					   job_id, false, SPI_OK_SELECT);
	parts = SPI_tuptable;
	nparts = SPI_processed;
	for (uint64 r = 0; r < nparts; r++)
	{
		bool		isnull;
		Datum		values[3];
		text	   *t = DatumGetTextPP(SPI_getbinval(parts->vals[r], parts->tupdesc, 3, &isnull));
		text	   *m = isnull ? NULL : mask_text(set, t);

		if (m == NULL || m == t)
			continue;
		values[0] = SPI_getbinval(parts->vals[r], parts->tupdesc, 1, &isnull);
		values[1] = SPI_getbinval(parts->vals[r], parts->tupdesc, 2, &isnull);
		values[2] = PointerGetDatum(m);
		buildlog_run(buildlog_plan(&part_update_plan,
								   "update buildlog.log_parts set content = $3"
								   " where tableoid operator(pg_catalog.=) $1"
								   " and ctid operator(pg_catalog.=) $2",
								   3, types),
					 values, NULL, false, SPI_OK_UPDATE);
		changed++;
		CHECK_FOR_INTERRUPTS();
	}

	buildlog_lock_stored_log(job_id, &log);
	if (log.found && log.purged)
		buildlog_restore_purged(job_id, &log);
	if (log.found && log.content != NULL)
	{
		Oid			ltypes[3] = {INT8OID, TEXTOID, INT4ARRAYOID};
		Datum		values[3];
		Datum	   *s = palloc(sizeof(Datum) * Max(log.nparts, 1));
		ArrayType  *starts;
		text	   *m;
		bool		log_changed;

		buildlog_check_stored(&log);
		for (int i = 0; i < log.nparts; i++)
			s[i] = Int32GetDatum(log.starts[i]);
		starts = construct_array(s, log.nparts, INT4OID, 4, true, TYPALIGN_INT);
		m = mask_with_offsets(set, log.content, log.content_len, starts, &log_changed);
		if (log_changed)
		{
			values[0] = Int64GetDatum(job_id);
			values[1] = PointerGetDatum(m);
			values[2] = PointerGetDatum(starts);
			buildlog_run(buildlog_plan(&log_update_plan,
									   "update buildlog.logs set content = $2, part_starts = $3,"
									   " updated_at = pg_catalog.now(), " ARCHIVE_RESET_SQL
									   " where job_id operator(pg_catalog.=) $1",
									   3, ltypes),
						 values, NULL, false, SPI_OK_UPDATE);
			changed++;
		}
	}
	return changed;
}

/*
 * Split the secrets argument into the values to register: each element,
 * or each line of a multi-line element (lines shorter than the minimum
 * skipped, as a PEM key's last line may be).  Errors never show a value.
 */
static void
split_secrets(ArrayType *arr, SecretList *l)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("secrets must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *t;
		const char *v;
		int			len;
		bool		multiline;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("secrets must not contain NULL elements"),
					 errdetail("Element %d of secrets is NULL.", i + 1)));
		t = DatumGetTextPP(elems[i]);
		v = VARDATA_ANY(t);
		len = VARSIZE_ANY_EXHDR(t);
		multiline = memchr(v, '\n', len) != NULL || memchr(v, '\r', len) != NULL;
		for (int from = 0; from < len;)
		{
			int			to = from;

			while (to < len && v[to] != '\n' && v[to] != '\r')
				to++;
			if (to - from > MASK_SECRET_MAX_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("secret too long"),
						 errdetail("Element %d of secrets has a line of %d bytes; the limit is %d.",
								   i + 1, to - from, MASK_SECRET_MAX_LEN)));
			if (to - from < MASK_SECRET_MIN_LEN && !multiline)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("secret too short to be masked"),
						 errdetail("Element %d of secrets has %d bytes; a secret needs at least %d.",
								   i + 1, to - from, MASK_SECRET_MIN_LEN),
						 errhint("Masking so short a value would hide ordinary text, and hiding it would not protect it.")));
			if (to - from >= MASK_SECRET_MIN_LEN && !list_has(l, v + from, to - from))
				list_add(l, v + from, to - from);
			from = to + 1;
		}
	}
}

/*
 * add_secrets(job_id, secrets text[]) registers the job's secrets and masks
 * what is already stored of its log; returns how many were new.
 */
Datum
buildlog_add_secrets(PG_FUNCTION_ARGS)
{
	int64		job_id;
	SecretList	given;
	SecretList *stored = NULL;
	SecretList	all;
	Oid			relid;
	Oid			save_user;
	int			save_sec;
	int			nstored;
	int			fresh;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("add_secrets() arguments must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	if (job_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job id must be positive"),
				 errdetail("job_id is " INT64_FORMAT ".", job_id)));
	memset(&given, 0, sizeof(given));
	split_secrets(PG_GETARG_ARRAYTYPE_P(1), &given);
	relid = secrets_relid();
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("buildlog.job_secrets does not exist"),
				 errhint("ALTER EXTENSION buildlog UPDATE TO '0.3.2'.")));

	SPI_connect();
	/* row before job, as aggregate() and set_content() */
	buildlog_run_by_id(&row_lock_plan,
					   "select 1 from buildlog.logs where job_id operator(pg_catalog.=) $1 for update",
					   job_id, false, SPI_OK_SELECT);
	buildlog_lock_job_exclusive(job_id);
	become_owner(relid, &save_user, &save_sec);
	nstored = load_lists(&job_id, 1, cxt, &stored);
	memset(&all, 0, sizeof(all));
	all.job_id = job_id;
	if (nstored > 0)
		for (int i = 0; i < stored[0].n; i++)
			list_add(&all, stored[0].values[i], stored[0].lens[i]);
	all.nstored = all.n;
	for (int i = 0; i < given.n; i++)
		if (!list_has(&all, given.values[i], given.lens[i]))
			list_add(&all, given.values[i], given.lens[i]);
	fresh = all.n - all.nstored;
	if (all.n > MASK_SECRETS_PER_JOB)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many secrets for job " INT64_FORMAT, job_id),
				 errdetail("The job would have %d secrets; the limit is %d.",
						   all.n, MASK_SECRETS_PER_JOB)));
	if (fresh > 0)
	{
		store_list(&all, all.nstored);
		(void) mask_stored(job_id, list_set(&all));
	}
	restore_user(save_user, save_sec);
	SPI_finish();
	for (int i = 0; i < given.n; i++)
		explicit_bzero(given.values[i], given.lens[i]);
	PG_RETURN_INT32(fresh);
}
