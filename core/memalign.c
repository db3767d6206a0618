/* memalign.c: layer 8, over-aligned allocation. align is a power of two. Small requests take the
 * first class whose size is a multiple of align (slab starts are 4 KB aligned, so every block of
 * that class is aligned); larger ones get a mapping aligned to it. */
#include "alloc.h"

#include "alloc_fast.h"

void *hak__memalign(size_t align, size_t n)
{
	if (align <= HAK_ALIGN)
		return hak__malloc_fast(n);
	hak__init_once();
	size_t want = n > align ? n : align;
	if (align > 4096 || want > HAK_SMALL_MAX)
		return hak__large_alloc_guarded(n, align, false);
	unsigned cls = hak__size_to_class(want);
	while (hak__classes[cls].block_size % align)
		cls++;
	return hak__alloc_class(cls);
}
