/* superslab_example.c: the example plugin of "how to write a policy". A complete, working
 * SuperSlab size policy: 1 MB SuperSlabs for the small size classes, 2 MB for the large ones,
 * the boundary set by one key, `large_from` (block size in bytes, default 16384).
 *
 *     [superslab]
 *     policy = example          ; loads <policy_dir>/superslab_example.so
 *     large_from = 4096         ; classes of 4096-byte blocks and up get 2 MB SuperSlabs
 *
 * Build it like any plugin (the top Makefile builds every .c file in policies/):
 *     cc -std=c11 -Wall -Wextra -fPIC -fvisibility=hidden -Iinclude -shared \
 *        -o build/policies/superslab_example.so policies/superslab_example.c
 *     chmod go-w build/policies/superslab_example.so   # the loader refuses writable plugins
 * and check it without running anything:  hakmem policies;  hakmem check my.ini
 *
 * The rules every plugin follows, shown below:
 *  - include only <hakmem_policy.h>: the core's services come in through `core`, never by
 *    linking against the core;
 *  - export exactly one descriptor, with HAK_POLICY_EXPORT and HAK_POLICY_DESC_INIT (they fill
 *    the magic, ABI version, struct size and signature the loader checks);
 *  - the file is named <kind>_<name>.so and the descriptor's name is <name>;
 *  - init validates every key and names the bad one; it may call malloc (the core is already
 *    serving allocations when plugins load) but must not start threads: `hakmem check` calls it;
 *  - the slow-path functions are called without locks from many threads: keep them short and
 *    make the state read-only after init (or atomic).
 */
#include <hakmem_policy.h> /* the ONLY header of hakmem a plugin includes */
#include <stdlib.h>
#include <string.h>

#define EXAMPLE_LG_SMALL 20 /* 1 MB: less untouched address space for small blocks */
#define EXAMPLE_LG_LARGE 21 /* 2 MB: several slabs of the big classes fit in one SuperSlab */

/* Everything the policy needs after init. Read-only once init returns, so the slow path below
 * may read it from any thread without synchronisation. */
struct example_state {
	const struct hak_core_api *core; /* the core's services; valid for the life of the process */
	unsigned long large_from;        /* block size (bytes) from which SuperSlabs are 2 MB */
};

/* Called once, at start-up (and by `hakmem check`). `settings` holds the keys of the
 * [superslab] section other than `policy`, each with its line; it is only valid during this
 * call, so copy what you keep. Return 0, or an errno value with one line of text in err (no
 * newline, no "hakmem:" prefix: the loader adds the file, line and the fallback it takes). */
static int example_init(const struct hak_core_api *core, const struct hak_settings *settings, void **state,
			char *err, size_t errlen)
{
	struct example_state st = {.core = core, .large_from = 16384}; /* the defaults */
	for (size_t i = 0; i < settings->count; i++) {
		const struct hak_setting *it = &settings->items[i];
		int e;
		if (strcmp(it->key, "large_from") == 0) /* the helpers write the message for us */
			e = hak_setting_uint(it, 16, 131072, &st.large_from, err, errlen);
		else
			e = hak_setting_unknown(it, "large_from", err, errlen);
		if (e)
			return e; /* the built-in `fixed` policy runs instead; nothing was allocated */
	}
	struct example_state *s = malloc(sizeof *s);
	if (!s) {
		snprintf(err, errlen, "no memory for the policy state");
		return 12; /* ENOMEM: plugins return errno values */
	}
	*s = st;
	*state = s; /* handed back to every call below */
	return 0;
}

/* The one slow-path function of a SuperSlab policy: log2 of the size of the next SuperSlab the
 * core maps for a slab of class `cls`. Called when no SuperSlab has room, so not on the malloc
 * fast path, but still from any thread at any time: no locks, no allocation, no I/O here. */
static unsigned example_lg_size_for(void *state, unsigned cls)
{
	const struct example_state *s = state;
	return s->core->class_block_size(cls) >= s->large_from ? EXAMPLE_LG_LARGE : EXAMPLE_LG_SMALL;
}

/* Called when the core drops a policy state it started but will not use (for instance when the
 * configuration asked for the built-in after all, or after `hakmem check`). Optional. */
static void example_fini(void *state)
{
	free(state);
}

/* The kind-specific table. Fields appended in later ABI minors stay zero here, which the core
 * reads as "not provided". */
static const struct hak_superslab_ops example_ops = {
	.lg_size_for = example_lg_size_for, /* mandatory for a superslab policy */
};

/* The descriptor the loader looks up (`hak_policy_descriptor`). The first argument only names
 * the copy when a policy is compiled into the core with -DHAK_BUILTIN. The summary is the line
 * `hakmem policies` shows. */
HAK_POLICY_EXPORT(hak__builtin_superslab_example) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_SUPERSLAB, "example", "1.0.0",
			     "example plugin: 1 MB SuperSlabs for small classes, 2 MB from large_from bytes"),
	.init = example_init,
	.fini = example_fini,
	.superslab = &example_ops,
};
