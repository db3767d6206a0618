/* init.c: layer 8, bringing the core up on its built-in policies: no file I/O, no dlopen, safe
 * from any thread's first malloc (another library's constructor may run before ours). */
#include "alloc.h"

#include "block.h"
#include "pool.h"
#include "services.h"

_Atomic int hak__inited;
static _Atomic int init_claimed;

void hak__init(void)
{
	if (likely(hak_load_acquire(&hak__inited)))
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_claimed, &expect, 1)) {
		while (!hak_load_acquire(&hak__inited))
			sched_yield();
		return;
	}
	hak__size_classes_init();
	hak__block_key_init();
	hak__map_init(); /* the free fast path's flat map, before the first SuperSlab */
	/* Before the pool maps more, exited threads' parked states retire and live threads give
	 * back the slabs others emptied (layer 5 below 2 only through this hook). */
	hak__pool_set_before_map(hak__threads_before_map);
	hak__policies_boot();
	hak_store_release(&hak__inited, 1);
}
