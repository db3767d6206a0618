/* fake_core.h: a recording fake of the core, for the unit tests of policy plugins. A plugin gets
 * `fake_core_api`, a struct hak_core_api built from the same service list as the real table
 * (core/core_services.h: every service is a fake_<name> in fake_core.c, so a service added to
 * the ABI and not to the fake does not compile), and the test checks what the plugin asked the
 * core, in order, with which arguments. No allocator runs underneath: the services answer from
 * a script the test sets (struct fake_script), from a small model of the empty SuperSlabs, and
 * from fake slabs and thread states whose blocks are real 16-byte memory cells.
 *
 * Writing a test for your plugin (tests/unit/test_plugin_<kind>.c; unit.mk builds it):
 *
 *     #include <setjmp.h>, <stdarg.h>, <stddef.h>, <stdint.h>, <cmocka.h>, then "fake_core.h"
 *     FAKE_PLUGIN(trim_mine);            // its descriptor: policies/trim_mine.c is compiled
 *                                        // into the unit archive with -DHAK_BUILTIN, so it is
 *                                        // hak__builtin_trim_mine (HAK_POLICY_EXPORT's name)
 *     static void empties_go_back(void **unused)
 *     {
 *         void *st = fake_load(&hak__builtin_trim_mine, FAKE_KV("empty_reserve = 1"));
 *         const struct hak_trim_ops *ops = hak__builtin_trim_mine.ops; // call ops as the core does
 *         fake_add_empty(3);             // three SuperSlabs are empty now
 *         fake_clear();                  // forget what init asked
 *         ops->superslab_empty(st);
 *         assert_string_equal(fake_actions(), "release_empty(1,0,~0u)=2");
 *         FAKE_ASSERT_CALL(fake_nth("release_empty", 0), "release_empty", 1, 0, ~0u);
 *         assert_int_equal(fake_empties(), 1);
 *         fake_unload(&hak__builtin_trim_mine, st);
 *     }
 *     ... cmocka_unit_test_setup_teardown(empties_go_back, fake_setup, fake_teardown) ...
 *
 * (A test that starts threads, a helper or its own, also goes into TSAN_TESTS in
 * tests/sanitize.mk; make test-asan runs every runner.)
 *
 * fake_setup resets everything (log, script, slabs, threads, counters, clock); fake_teardown
 * fails the test if the plugin broke a rule the fake checks (below) or left a helper running,
 * and frees the fake's memory.
 *
 * The call log. Every service call is recorded in order: its name (as in core_services.h), up
 * to FAKE_ARGS integer or pointer arguments (a chain is recorded as its count), and what it
 * returned. fake_actions() renders the calls that act on the core (every service but the
 * queries: now_ns, class_*, thread_token, refill_count, slab_get_info, slab_policy_links,
 * slab_of, empty_count, live_superslabs, heap_facts, free_runs_each, process_rss), fake_trace()
 * renders them all, as "name(arg,arg)=ret" separated by spaces: integers in decimal (UINT32_MAX
 * as ~0u, UINT64_MAX as ~0), fake slabs as s1, s2... (in the order made), fake threads as
 * t1..., their blocks as s1#0..., the handle init got as self, the state fake_load returned as
 * state, NULL as 0, any other pointer as p; "=ret" for the services returning a scalar (not
 * trim_pass: its struct is in fake_call.ret only as superslabs_released).
 *
 * The empties model. fake_add_empty(n) makes n SuperSlabs empty now (oldest first by the fake
 * clock). release_empty(floor, min_empty_ns, max) unmaps them oldest first as the header says
 * (never below floor, at most max, only those empty for min_empty_ns). trim_pass(keep, flags)
 * releases beyond keep and, with HAK_TRIM_PURGE, also every empty that was already empty at the
 * previous purging pass (reserve included), as the header says of the flag; it returns that
 * count with script.trim_purged and script.trim_large. Every unmapped empty also leaves
 * live_superslabs. Nothing else of a trim pass is modelled (reap, consolidate... return the
 * script's values and do nothing).
 *
 * Slabs and threads (ownership policies). slab_acquire makes a fake slab (capacity: the real
 * class's, or script.slab_capacity), slab_adopt hands back the most recently abandoned slab
 * of (self, cls); fake_slab_new makes one for a test directly (owner HAK_OWNER_NONE: abandoned,
 * adoptable). A slab's blocks are in the slab, out (a chain, a cache, a policy's list), with
 * the program, or in its remote queue; slab_take, chain_return, remote_push and remote_drain
 * move them as the core does (chain_return calls on_slab_free the moment a slab is entirely
 * free), slab_get_info reports the counts. fake_thread_new makes a thread state with a token, a
 * zeroed tstate and caches: cache_fill appends to its cache of cls; fake_cache_pop hands a
 * cached block to the program, fake_cache_push frees one into the cache, fake_cache_take
 * empties the cache into a chain (what the core hands to flush), fake_free_foreign frees one
 * through the policy's free_foreign (what the core does with a block t does not accept).
 *
 * Rules the fake checks (fake_teardown fails on the first broken one, with its message):
 * a slab released with blocks out or queued, or twice, or while abandoned; a slab used after
 * its release; chain_return, cache_fill or remote_push of a block in the wrong place, or a
 * chain whose count or tail is wrong; word 1 of any fake block changed (the core's free mark:
 * a policy never writes it); a service called with a class that does not exist; a handle
 * other than the one init got passed to slab_acquire/slab_adopt/counter_register. A plugin
 * looping for ever ends the runner (abort, with a message) after FAKE_RUNAWAY service calls.
 *
 * Helper threads. spawn_helper records fn and arg; with script.spawn = FAKE_SPAWN_REFUSE it
 * returns script.spawn_err (the plugin's fallback runs), with FAKE_SPAWN_HOLD (the default) it
 * returns 0 and nothing runs until the test calls fake_helper_start(i), which runs fn(arg) on a
 * real thread; fake_helper_join(i) waits for it. So a test decides when a helper runs and
 * always ends it. While one runs, the services are serialised by the fake's lock: the test
 * reads the fake through its functions (they lock), or takes fake_lock()/fake_unlock() around
 * reading `fake` directly; fake_wait_count(name, n) waits (up to 30 s: a hang, not a timing
 * threshold) for the n-th call of a service.
 *
 * The clock: now_ns returns script.now_ns, 1 s at fake_setup; fake_advance(ns) moves it.
 */
#ifndef HAK_FAKE_CORE_H
#define HAK_FAKE_CORE_H

#include <hakmem_policy.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_ARGS 4            /* arguments recorded per call */
#define FAKE_CALLS_MAX 16384   /* calls kept; more is a rule broken (unless script.quiet) */
#define FAKE_RUNAWAY 20000000  /* calls in one test, logged or not, before the runner aborts */
#define FAKE_SLABS_MAX 512     /* fake slabs alive in one test */
#define FAKE_THREADS_MAX 16
#define FAKE_HELPERS_MAX 4
#define FAKE_COUNTERS_MAX 1024 /* counter ids (the core's HAK_COUNTER_VALUES: per-class arrays fit) */
#define FAKE_RUNS_MAX 16       /* free runs free_runs_each reports */
#define FAKE_EMPTIES_MAX 1024  /* empty SuperSlabs in the model */
#define FAKE_CLASSES_MAX 128   /* bound of the per-class script arrays (the core has fewer) */
#define FAKE_TSTATE_MAX 4096   /* bytes of a fake thread's tstate (the kinds table's limit) */

/* One recorded service call. */
struct fake_call {
	const char *name;        /* the service, as in core_services.h */
	unsigned nargs;
	uint64_t arg[FAKE_ARGS]; /* integers as passed, pointers as uintptr_t, a chain as its count */
	unsigned ptr_mask;       /* bit i: arg[i] is a pointer (for rendering) */
	uint64_t ret;            /* the scalar returned; trim_pass: superslabs_released; void: 0 */
	bool query, has_ret;     /* reads only; returns a scalar */
	char text[120];          /* log: the message; counter_register: the name */
};

enum fake_spawn_mode {
	FAKE_SPAWN_HOLD = 0,   /* record, return 0; run on a real thread when fake_helper_start says */
	FAKE_SPAWN_REFUSE = 1, /* record, return script.spawn_err */
};

/* What the services answer from. fake_setup zeroes it, then sets now_ns = 1 s and
 * spawn_err = EAGAIN; a test sets fields after fake_setup. */
struct fake_script {
	uint64_t now_ns;                 /* now_ns's answer (fake_advance) */
	unsigned live_superslabs;        /* live_superslabs's answer; unmapped empties leave it */
	struct hak_heap_facts facts;     /* heap_facts's answer, except now_ns, superslabs_live,
					  * superslabs_empty and oldest_empty_ns: from the model */
	struct hak_free_run runs[FAKE_RUNS_MAX]; /* free_runs_each's runs */
	unsigned nruns;
	uint64_t process_rss;            /* process_rss's answer */
	uint64_t purge_ret;              /* purge's answer (bytes purged) */
	unsigned large_release_ret;      /* large_release's answer */
	uint64_t trim_purged;            /* trim_pass's bytes_purged */
	unsigned trim_large;             /* trim_pass's large_released */
	unsigned reap_ret, collect_ret, reclaim_ret; /* reap_parked, collect_abandoned, reclaim_threads */
	enum fake_spawn_mode spawn;
	int spawn_err;                   /* spawn_helper's answer when refused */
	unsigned refill_count;           /* refill_count's answer; 0: the class batch */
	unsigned slab_capacity;          /* blocks of each new slab; 0: the real class's */
	unsigned acquire_fail;           /* slab_acquire answers NULL this many times; ~0u: always */
	bool counters_full;              /* counter_register answers -1 */
	bool quiet;                      /* calls are not logged (a stress test): the rules still hold */
	uint64_t local_frees[FAKE_CLASSES_MAX]; /* class_local_frees's answer */
};
extern struct fake_script fake;

/* The table a plugin gets, and the handle its init gets as `self`. */
extern const struct hak_core_api fake_core_api;
extern hak_policy *const fake_self;

/* The descriptor of a shipped plugin policies/<kind>_<name>.c, compiled into the unit archive
 * with -DHAK_BUILTIN: FAKE_PLUGIN(trim_idle) declares hak__builtin_trim_idle. */
#define FAKE_PLUGIN(kind_name) \
	__attribute__((visibility("hidden"))) extern const struct hak_policy_desc hak__builtin_##kind_name

/* ---- cmocka fixtures, loading ------------------------------------------------------------ */
int fake_setup(void **unused);    /* reset everything */
int fake_teardown(void **unused); /* fail on a broken rule or a running helper; free */
void fake_reset(void);

/* Settings as "key = value" strings, each on its own line (1, 2, ...) of the file "(test)". */
#define FAKE_KV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define FAKE_NO_KV ((const char *const[]){NULL})
/* Checks d as the loader does (hak__policy_validate: magic, ABI, signature, the kind's
 * mandatory ops...; fails the test if it would be refused), then calls d->init with
 * fake_core_api, fake_self and the settings. Returns init's result; the message is fake_err(). */
int fake_init(const struct hak_policy_desc *d, const char *const *kv, void **state);
const char *fake_err(void);
/* fake_init that must succeed; returns the state (rendered "state" in the log). */
void *fake_load(const struct hak_policy_desc *d, const char *const *kv);
/* d->fini(state) if there is one (a test may end a started policy's life this way; join its
 * helper first). */
void fake_unload(const struct hak_policy_desc *d, void *state);

/* Rules broken so far, the first one's message, and forgetting them (for tests of the fake
 * itself, which break rules on purpose). */
unsigned fake_broken(void);
const char *fake_broken_first(void);
void fake_forgive(void);

/* ---- the call log ------------------------------------------------------------------------ */
void fake_clear(void);                          /* forget the calls so far (the state stays) */
size_t fake_ncalls(void);
const struct fake_call *fake_call_at(size_t i); /* NULL past the end */
unsigned fake_count(const char *name);          /* calls of that service */
const struct fake_call *fake_nth(const char *name, unsigned n); /* its n-th call (0-based), or NULL */
const char *fake_actions(void); /* the calls acting on the core, rendered (valid until the next) */
const char *fake_trace(void);   /* every call, rendered */
/* Fails the test unless c is a call of `name` with exactly these arguments. */
#define FAKE_ASSERT_CALL(c, name, ...)                                                                 \
	fake_assert_call((c), (name), (const uint64_t[]){__VA_ARGS__},                                 \
			 sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t), __FILE__, __LINE__)
void fake_assert_call(const struct fake_call *c, const char *name, const uint64_t *args, unsigned n,
		      const char *file, int line);
/* Waits until `name` was called at least n times; 0, or -1 after 30 s (a hang). */
int fake_wait_count(const char *name, unsigned n);
void fake_lock(void);
void fake_unlock(void);

/* ---- the clock, the empties model, counters, logs -------------------------------------------- */
void fake_advance(uint64_t ns);
void fake_add_empty(unsigned n); /* n SuperSlabs empty from now (live_superslabs grows to cover them) */
unsigned fake_empties(void);   /* empty SuperSlabs in the model now */
unsigned fake_released_total(void); /* empties unmapped so far */
int fake_counter_id(const char *name);   /* first id registered under name, or -1 */
int64_t fake_counter(const char *name);  /* its value: the sum of counter_add, or counter_set's last */
const char *fake_last_log(void);         /* the last message logged, "" if none */
/* The last large_limits and set_parking arguments (zeroed / 0,0 until called). */
struct hak_large_limits fake_limits(void);
void fake_parking(unsigned *max_states, unsigned *max_units);

/* ---- slabs --------------------------------------------------------------------------------- */
/* A slab of cls made for fake_self with every block in it (not a service call: not logged).
 * owner HAK_OWNER_NONE: abandoned (slab_adopt hands it out). capacity 0: the class's. */
hak_slab *fake_slab_new(unsigned cls, uintptr_t owner, unsigned capacity);
/* Sets a slab's state: `used` blocks with the program, `remote` of them then freed to its
 * remote queue, the rest in the slab. Only for a slab with nothing out in chains or caches. */
void fake_slab_set(hak_slab *s, unsigned used, unsigned remote);
void *fake_slab_give(hak_slab *s);         /* one block from the slab to the program, or NULL */
struct hak_slab_info fake_slab_info(const hak_slab *s); /* what slab_get_info says (not logged) */
unsigned fake_slab_remote(const hak_slab *s); /* blocks in its remote queue */
unsigned fake_slab_id(const hak_slab *s);  /* 1, 2...: the order slabs were made */
hak_slab *fake_slab_by_id(unsigned id);    /* NULL if none */
unsigned fake_slab_count(void);            /* slabs made */
bool fake_slab_released(const hak_slab *s);
bool fake_slab_abandoned(const hak_slab *s);
hak_slab *fake_block_slab(const void *block); /* the slab of a fake block, or NULL (not logged) */
unsigned fake_blocks_out(void); /* blocks of unreleased slabs not in them: out, with the program, queued */

/* ---- threads ------------------------------------------------------------------------------- */
hak_thread *fake_thread_new(void);          /* token 0x1000 * n, tstate zeroed */
void *fake_tstate(hak_thread *t);           /* FAKE_TSTATE_MAX bytes, 64-aligned */
uintptr_t fake_token(const hak_thread *t);
unsigned fake_thread_id(const hak_thread *t); /* 1, 2... */
unsigned fake_cached(const hak_thread *t, unsigned cls);   /* blocks in t's cache of cls */
unsigned fake_fills(const hak_thread *t, unsigned cls);    /* cache_fill calls for t, cls */
uintptr_t fake_accept(const hak_thread *t, unsigned cls);  /* last cache_accept, 0 if none */
void *fake_cache_pop(hak_thread *t, unsigned cls);         /* a cached block to the program */
void fake_cache_push(hak_thread *t, unsigned cls, void *block); /* the program frees it into the cache */
struct hak_chain fake_cache_take(hak_thread *t, unsigned cls);  /* the whole cache as a chain */
/* The program frees a block the core does not cache: with the program -> out (free, in the
 * hands of the policy the core gives it to). fake_free_foreign does that, then calls d's
 * free_foreign(state, t, the block's slab, block), as the core's free path does. */
void fake_program_free(void *block);
void fake_free_foreign(const struct hak_policy_desc *d, void *state, hak_thread *t, void *block);

/* ---- helpers ------------------------------------------------------------------------------- */
unsigned fake_helpers(void);          /* spawn_helper calls that returned 0 */
void fake_helper_start(unsigned i);   /* run the i-th on a real thread */
void fake_helper_join(unsigned i);    /* wait for it to return */

#endif
