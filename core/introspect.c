/* introspect.c: layer 9, the figures behind glibc's introspection calls (mallinfo2, malloc_stats,
 * malloc_info; api.c exports them): bytes in use and free, per SuperSlab size, from the slab
 * metadata, the bytes each thread state moved out of slab land, and the thread caches.
 * Owns what each figure means (man/hakmem.7, "Introspection") and the retired states' share.
 *
 * Blocks are in one of three places. With the program: in use. In a thread cache: free for the
 * program, though "active" in the SuperSlab's count. In slab land: a slab's free list, its
 * remote queue, a central queue, or never carved. Each thread state counts the bytes it moved
 * out of slab land (cache fills) minus those that came back (flushes, foreign frees), so
 *     in use = sum of those counts - bytes in thread caches
 * is exact for whatever the calling thread did, and at quiescence; the caches of other threads
 * are read without stopping them (a snapshot). Nothing here runs on a fast path. */
#include "introspect.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "pool.h"
#include "thread.h"

/* ---- The walks ------------------------------------------------------------------------------- */

struct walk {
	const struct hak_thread *self;       /* the caller's state, walked exactly; NULL if none */
	int64_t out[2];                      /* sum of out_bytes */
	uint64_t other_cached[HAK_NCLASSES]; /* blocks in other threads' caches, per class */
	uint64_t self_cached[2][HAK_NCLASSES]; /* blocks in the caller's caches, per heap, class */
	uint64_t outstanding[2][HAK_NCLASSES]; /* carved minus private free list, per heap, class */
	uint64_t usable[2], capacity[2];     /* bytes and blocks slabs can hold */
	int64_t active[2];                   /* sum of the SuperSlabs' active counts */
	struct hak_figures *fig;
};

/* Fields their owners write without atomics (free counts, cache rooms, out_bytes), read here
 * while they may be written: a snapshot, by design (each read is one aligned word, never torn
 * on the machines hakmem runs on). ThreadSanitizer is told not to report these reads. */
#define HAK_SNAPSHOT_READ __attribute__((noinline, no_sanitize_thread))

HAK_SNAPSHOT_READ static uint32_t read_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* heap lock held */
HAK_SNAPSHOT_READ static void thread_fn(struct hak_thread *t, void *ctx)
{
	struct walk *w = ctx;
	for (unsigned h = 0; h < 2; h++)
		w->out[h] += __atomic_load_n(&t->out_bytes[h], __ATOMIC_RELAXED);
	if (t == w->self)
		return;
	/* Another thread's cache, without touching its blocks: its count is max - room (a full
	 * cache on its way to the slow path reads room UINT32_MAX: max blocks). */
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		const struct hak_tcache *tc = &t->cache[c];
		uint32_t room = read_u32(&tc->room), max = __atomic_load_n(&tc->max, __ATOMIC_RELAXED);
		w->other_cached[c] += room <= max ? max - room : max;
	}
}

/* The caller's own caches: walked, each block looked up (no other thread touches them). */
static void self_walk(struct walk *w)
{
	const struct hak_thread *t = w->self;
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		unsigned n = 0;
		for (void **b = t->cache[c].head; b && n < (1u << 20); b = b[0], n++) {
			const struct hak_superslab *ss = hak__ss_lookup(b);
			if (ss)
				w->self_cached[ss->lg_size - HAK_SS_LG_MIN][c]++;
		}
	}
}

/* pool lock held */
static void superslab_fn(const struct hak_superslab *ss, void *ctx)
{
	struct walk *w = ctx;
	unsigned h = ss->lg_size - HAK_SS_LG_MIN;
	struct hak_heap_figures *f = &w->fig->heap[h];
	size_t size = (size_t)1 << ss->lg_size;
	f->superslabs++;
	f->system += size;
	w->active[h] += hak_load_relaxed(&ss->xactive);
	if (ss->unit_mask == 0) { /* empty: all of it is free, header included */
		f->empty_superslabs++;
		f->empty += size;
		f->free_units += size;
		f->free_runs++;
		return;
	}
	f->overhead += HAK_SS_HEADER;
	bool in_run = false;
	for (unsigned u = 0; u < ss->nunits; u++) {
		size_t head = u == 0 ? HAK_SS_HEADER : 0;
		if (!(ss->unit_mask >> u & 1u)) { /* a unit in no slab */
			size_t bytes = HAK_UNIT_SIZE - head;
			f->free_units += bytes;
			if (!in_run)
				f->free_runs++;
			in_run = true;
			if (ss->dirty_mask >> u & 1u)
				f->dirty_free_units += bytes;
			continue;
		}
		in_run = false;
		const struct hak_slab *s = &ss->slabs[u];
		if (s->nunits == 0 || s->first_unit != u)
			continue; /* a later unit of a slab that starts before */
		uint64_t usable = (uint64_t)s->capacity * s->block_size;
		f->overhead += ((size_t)s->nunits << HAK_UNIT_SHIFT) - head - usable;
		w->usable[h] += usable;
		w->capacity[h] += s->capacity;
		uint64_t carved = hak_load_relaxed(&s->xcarved), nfree = read_u32(&s->nfree);
		if (carved > s->capacity)
			carved = s->capacity;
		if (nfree > carved)
			nfree = carved;
		f->class_free_blocks[s->cls] += s->capacity - carved + nfree;
		w->outstanding[h][s->cls] += carved - nfree;
	}
}

static uint64_t clamp0(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

void hak__figures(struct hak_figures *out)
{
	struct walk w;
	memset(&w, 0, sizeof w);
	memset(out, 0, sizeof *out);
	w.fig = out;
	hak__init_once();
	struct hak_thread *self = hak__tls;
	w.self = self->state == HAK_THREAD_LIVE ? self : NULL;
	if (w.self)
		self_walk(&w);
	hak__threads_each(thread_fn, &w);
	int64_t retired[2];
	hak__threads_out_bytes_retired(retired);
	for (unsigned h = 0; h < 2; h++)
		w.out[h] += retired[h];
	hak__pool_each(superslab_fn, &w);
	hak__large_figures(&out->large);

	/* Other threads' cached blocks of a class are split between the heaps as the class's
	 * outstanding blocks are (exact whenever the class lives in one heap only). */
	uint64_t cached_blocks[2] = {0, 0}, cached[2] = {0, 0};
	for (unsigned c = 0; c < HAK_NCLASSES; c++) {
		uint64_t o0 = w.outstanding[0][c], o1 = w.outstanding[1][c], n = w.other_cached[c];
		uint64_t to0 = o0 + o1 ? n * o0 / (o0 + o1) : 0;
		uint64_t in[2] = {w.self_cached[0][c] + to0, w.self_cached[1][c] + n - to0};
		for (unsigned h = 0; h < 2; h++) {
			cached_blocks[h] += in[h];
			cached[h] += in[h] * hak__classes[c].block_size;
		}
	}
	for (unsigned h = 0; h < 2; h++) {
		struct hak_heap_figures *f = &out->heap[h];
		unsigned lg = HAK_SS_LG_MIN + h;
		f->peak_superslabs = hak__pool_peak_of(lg);
		f->peak_system = f->peak_superslabs << lg;
		if (f->peak_system < f->system)
			f->peak_system = f->system;
		uint64_t outb = clamp0(w.out[h]), outn = clamp0(w.active[h]);
		if (outb > w.usable[h])
			outb = w.usable[h];
		if (outn > w.capacity[h])
			outn = w.capacity[h];
		f->cached = cached[h] < outb ? cached[h] : outb;
		f->cached_blocks = cached_blocks[h] < outn ? cached_blocks[h] : outn;
		f->in_use = outb - f->cached;
		f->in_use_blocks = outn - f->cached_blocks;
		f->free_in_slabs = w.usable[h] - outb;
		f->free_in_slabs_blocks = w.capacity[h] - outn;
	}
}

/* ---- mallinfo2 ------------------------------------------------------------------------------- */

void hak__mallinfo2(struct mallinfo2 *mi)
{
	struct hak_figures f;
	hak__figures(&f);
	memset(mi, 0, sizeof *mi);
	for (unsigned h = 0; h < 2; h++) {
		const struct hak_heap_figures *x = &f.heap[h];
		mi->arena += x->system;
		mi->ordblks += x->free_in_slabs_blocks + x->free_runs;
		mi->smblks += x->cached_blocks;
		mi->fsmblks += x->cached;
		mi->uordblks += x->in_use;
		mi->fordblks += x->cached + x->free_in_slabs + x->free_units;
		mi->keepcost += x->empty + x->dirty_free_units;
	}
	mi->arena += f.large.live_bytes + f.large.cached_bytes;
	mi->ordblks += f.large.cached;
	mi->hblks = f.large.live;
	mi->hblkhd = f.large.live_bytes;
	mi->uordblks += f.large.live_bytes;
	mi->fordblks += f.large.cached_bytes;
	mi->keepcost += f.large.cached_bytes;
	mi->usmblks = 0; /* unused, as in glibc */
}

/* ---- malloc_stats: glibc's layout, one "Arena" per SuperSlab size ---------------------------- */

int hak__malloc_stats_format(char *buf, size_t len)
{
	struct hak_figures f;
	hak__figures(&f);
	int n = 0;
	uint64_t system = 0, in_use = 0;
	for (unsigned h = 0; h < 2; h++) {
		const struct hak_heap_figures *x = &f.heap[h];
		n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0,
			      "Arena %u:\nsystem bytes     = %10llu\nin use bytes     = %10llu\n", h,
			      (unsigned long long)x->system, (unsigned long long)x->in_use);
		system += x->system;
		in_use += x->in_use;
	}
	n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0,
		      "Total (incl. mmap):\nsystem bytes     = %10llu\nin use bytes     = %10llu\n"
		      "max mmap regions = %10llu\nmax mmap bytes   = %10llu\n",
		      (unsigned long long)(system + f.large.live_bytes + f.large.cached_bytes),
		      (unsigned long long)(in_use + f.large.live_bytes), (unsigned long long)f.large.peak,
		      (unsigned long long)f.large.peak_bytes);
	return n;
}

/* ---- malloc_info: glibc's XML, one <heap> per SuperSlab size --------------------------------- */

/* Figures first (hakmem's locks are taken and released there), then stdio only: fp may be a
 * memory stream that calls malloc. Returns 0, or -1 when writing failed. */
int hak__malloc_info_write(FILE *fp)
{
	struct hak_figures f;
	hak__figures(&f);
	uint64_t fast_n = 0, fast = 0, rest_n = 0, rest = 0, system = 0, max = 0;
	int bad = fputs("<malloc version=\"1\">\n", fp) < 0;
	for (unsigned h = 0; h < 2; h++) {
		const struct hak_heap_figures *x = &f.heap[h];
		bad |= fprintf(fp, "<heap nr=\"%u\">\n<sizes>\n", h) < 0;
		for (unsigned c = 0; c < HAK_NCLASSES; c++) {
			uint64_t k = x->class_free_blocks[c], size = hak__classes[c].block_size;
			if (k)
				bad |= fprintf(fp, "  <size from=\"%llu\" to=\"%llu\" total=\"%llu\" count=\"%llu\"/>\n",
					       c ? (unsigned long long)hak__classes[c - 1].block_size + 1 : 1ULL,
					       (unsigned long long)size, (unsigned long long)(k * size),
					       (unsigned long long)k) < 0;
		}
		uint64_t rn = x->free_in_slabs_blocks + x->free_runs, r = x->free_in_slabs + x->free_units;
		bad |= fprintf(fp,
			       "</sizes>\n<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
			       "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
			       "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
			       "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n"
			       "</heap>\n",
			       (unsigned long long)x->cached_blocks, (unsigned long long)x->cached,
			       (unsigned long long)rn, (unsigned long long)r, (unsigned long long)x->system,
			       (unsigned long long)x->peak_system, (unsigned long long)x->system,
			       (unsigned long long)x->system) < 0;
		fast_n += x->cached_blocks;
		fast += x->cached;
		rest_n += rn;
		rest += r;
		system += x->system;
		max += x->peak_system;
	}
	/* Freed large mappings kept for reuse are free bytes hakmem holds outside the heaps. */
	rest_n += f.large.cached;
	rest += f.large.cached_bytes;
	system += f.large.cached_bytes;
	max += f.large.cached_bytes;
	bad |= fprintf(fp,
		       "<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
		       "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
		       "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
		       "<system type=\"current\" size=\"%llu\"/>\n<system type=\"max\" size=\"%llu\"/>\n"
		       "<aspace type=\"total\" size=\"%llu\"/>\n<aspace type=\"mprotect\" size=\"%llu\"/>\n"
		       "</malloc>\n",
		       (unsigned long long)fast_n, (unsigned long long)fast, (unsigned long long)rest_n,
		       (unsigned long long)rest, (unsigned long long)f.large.live,
		       (unsigned long long)f.large.live_bytes, (unsigned long long)system,
		       (unsigned long long)max, (unsigned long long)system, (unsigned long long)system) < 0;
	return bad ? -1 : 0;
}
