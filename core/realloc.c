/* realloc.c: layer 8, realloc for every size: in place while a small block fits without wasting
 * more than half, mremap for large to large, else allocate, copy, free. */
#include "alloc.h"

#include <string.h>

#include "alloc_fast.h"
#include "large.h"

void *hak__realloc(void *p, size_t n)
{
	if (!p)
		return hak__malloc_fast(n);
	if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
		hak__free(p);
		return NULL;
	}
	size_t old;
	struct hak_slab *s = hak__ptr_check(p, "realloc", true);
	if (s) {
		old = s->block_size;
		/* Stay in place while it fits and does not waste more than half. */
		if (n <= old && (n >= old / 2 || old <= 32))
			return p;
	} else {
		bool handled = false;
		hak__enter("realloc");
		void *q = hak__large_realloc(p, n, &handled);
		old = handled ? 0 : hak__large_usable(p);
		hak__leave();
		if (handled)
			return q;
		HAK_CHECK(old, "realloc(): invalid pointer %p (not allocated by hakmem)", p);
	}
	void *q = hak__malloc_fast(n);
	if (!q)
		return NULL; /* the old block stays intact */
	memcpy(q, p, n < old ? n : old);
	hak__free(p);
	return q;
}
