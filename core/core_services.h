/* core_services.h: the list of services in struct hak_core_api, declared once, in table order.
 * The core's table (services.c), the inert table of `hakmem check` (tools/hakmem_check.c) and
 * the recording fake core of the plugin unit tests (tests/unit/fake_core.c) are each built by
 * expanding it over functions named <prefix>_<service>, so a service added to the ABI and not
 * to one of them does not compile. */
#ifndef HAK_CORE_SERVICES_H
#define HAK_CORE_SERVICES_H

#define HAK_CORE_SERVICES(X)                                                                    \
	X(log) X(now_ns) X(class_count) X(class_block_size) X(class_batch) X(counter_register)      \
	X(counter_add) X(counter_set) X(spawn_helper)                                               \
	X(thread_token) X(refill_count) X(cache_fill) X(cache_accept) X(class_local_frees)         \
	X(slab_acquire) X(slab_adopt) X(slab_release) X(slab_abandon) X(slab_take) X(chain_return) \
	X(slab_get_info) X(slab_policy_links) X(slab_of) X(remote_push) X(remote_drain)            \
	X(reap_parked) X(consolidate) X(collect_abandoned) X(reclaim_threads)                      \
	X(request_cache_flush) X(release_empty) X(purge) X(large_release) X(large_limits)          \
	X(set_parking) X(empty_count) X(live_superslabs) X(heap_facts) X(free_runs_each) X(process_rss) X(trim_pass) \
	X(helper_sleep) X(helper_wake)

/* The first fields of such a table; then HAK_CORE_SERVICES(X) with X(name) = `.name = f_##name,`. */
#define HAK_CORE_API_HEADER \
	.abi_major = HAK_POLICY_ABI_MAJOR, .abi_minor = HAK_POLICY_ABI_MINOR, .size = sizeof(struct hak_core_api)

#endif
