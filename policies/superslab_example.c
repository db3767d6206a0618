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
 * and check it without running anything:  hakmem policies --keys;  hakmem check my.ini
 *
 * The rules every plugin follows, shown below (include/hakmem_policy.h has the whole contract):
 *  - include only <hakmem_policy.h>: the core's services come in through `core`, never by
 *    linking against the core;
 *  - export exactly one descriptor, with HAK_POLICY_EXPORT and HAK_POLICY_DESC_INIT (they fill
 *    the magic, ABI version, struct sizes and signature the loader checks); every ops table
 *    starts with its own size;
 *  - the file is named <kind>_<name>.so and the descriptor's name is <name>;
 *  - init validates every key and names the bad one, and does nothing else: `hakmem check` calls
 *    it (with a core that serves nothing) and then fini. It may call malloc (the core is already
 *    serving allocations when plugins load). Start threads, if you need any, in `start`;
 *  - the slow-path functions are called without locks from many threads: keep them short and
 *    make the state read-only after init (or atomic).
 */
#include <hakmem_policy.h> /* the ONLY header of hakmem a plugin includes */
#include <stdlib.h>
#include <string.h>

#define EXAMPLE_LG_SMALL 20 /* 1 MB: less untouched address space for small blocks */
#define EXAMPLE_LG_LARGE 21 /* 2 MB: several slabs of the big classes fit in one SuperSlab */

/* The keys, declared once: hak_settings_parse validates against this table (one message naming
 * the line, the key, what was expected and what was found), and `hakmem policies --keys` prints
 * it. Each row: key, type, bounds, where the value goes, the default as written, one sentence. */
struct example_settings {
	unsigned long large_from; /* block size (bytes) from which SuperSlabs are 2 MB */
};

static const struct hak_setting_spec example_spec[] = {
	{"large_from", HAK_SETTING_UINT, 16, 131072, offsetof(struct example_settings, large_from), "16384",
	 "block size in bytes from which a class gets 2 MB SuperSlabs"},
};

/* Everything the policy needs after init. Read-only once init returns, so the slow path below
 * may read it from any thread without synchronisation. */
struct example_state {
	const struct hak_core_api *core; /* the core's services; valid for the life of the process */
	struct example_settings set;
};

/* Called once, at start-up (and by `hakmem check`). `settings` holds the keys of the
 * [superslab] section other than `policy`, each with its line; it is only valid during this
 * call, so copy what you keep. `self` is this policy's handle for services that act on its
 * behalf (a SuperSlab size policy needs none). Return 0, or an errno value with one line of
 * text in err (no newline, no "hakmem:" prefix: the loader adds the file, line and the fallback
 * it takes). */
static int example_init(const struct hak_core_api *core, hak_policy *self, const struct hak_settings *settings,
			void **state, char *err, size_t errlen)
{
	(void)self;
	struct example_state st = {.core = core, .set = {.large_from = 16384}}; /* the defaults */
	int e = hak_settings_parse(settings, example_spec, sizeof example_spec / sizeof example_spec[0], &st.set,
				   err, errlen);
	if (e)
		return e; /* the built-in `fixed` policy runs instead; nothing was allocated */
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
	return s->core->class_block_size(cls) >= s->set.large_from ? EXAMPLE_LG_LARGE : EXAMPLE_LG_SMALL;
}

/* Called when the core drops a policy state it never started (the configuration asked for the
 * built-in after all, or `hakmem check` is done). A started policy's state is never freed. */
static void example_fini(void *state)
{
	free(state);
}

/* The kind-specific table, starting with its size (the core reads no field beyond it, so a
 * plugin built against an older header keeps working when the table grows). */
static const struct hak_superslab_ops example_ops = {
	.size = sizeof(struct hak_superslab_ops),
	.lg_size_for = example_lg_size_for, /* mandatory for a superslab policy */
};

/* The descriptor the loader looks up (`hak_policy_descriptor`). The first argument only names
 * the copy when a policy is compiled into the core with -DHAK_BUILTIN. The summary is the line
 * `hakmem policies` shows. */
HAK_POLICY_EXPORT(hak__builtin_superslab_example) = {
	HAK_POLICY_DESC_INIT(HAK_POLICY_SUPERSLAB, "example", "2.0.0",
			     "example plugin: 1 MB SuperSlabs for small classes, 2 MB from large_from bytes"),
	.init = example_init,
	.fini = example_fini,
	.ops = &example_ops,
	HAK_SETTINGS_SPEC(example_spec),
};
