/* plugin_fallback: the program a damaged plugin must not kill. Run with an INI naming a damaged
 * plugin (tests/reliability/run.sh builds them from a real plugin: cut short, patched for another
 * machine, random bytes, no descriptor...), it must reach main, find the expected policies
 * running (the built-in where the plugin was refused), and allocate, check and free blocks of
 * every size class on two threads as usual.
 * Usage: plugin_fallback OWNERSHIP SUPERSLAB TRIM     (the expected policy names)
 * Prints "plugin_fallback: ownership X, superslab Y, trim Z; N blocks ok". */
#include <pthread.h>

#include "rel.h"

typedef const char *(*policy_name_fn)(const char *kind);

enum { N = 20000 };

static void *work(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	static __thread void *v[N];
	static __thread size_t len[N];
	for (int i = 0; i < N; i++) {
		len[i] = (size_t)(i % 97 == 0 ? 100000 + i : 1 + (i * 37) % 3000);
		v[i] = malloc(len[i]);
		REL_CHECK(v[i], "malloc(%zu) failed", len[i]);
		rel_fill(v[i], len[i], seed);
	}
	for (int i = 0; i < N; i++) {
		REL_CHECK(rel_intact(v[i], len[i], seed), "block %d (%zu bytes) changed", i, len[i]);
		free(v[i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	REL_CHECK(argc == 4, "usage: plugin_fallback OWNERSHIP SUPERSLAB TRIM");
	REL_CHECK(rel_is_hakmem(), "hakmem is not loaded (LD_PRELOAD ignored?)");
	policy_name_fn name = (policy_name_fn)dlsym(RTLD_DEFAULT, "hak_policy_name");
	REL_CHECK(name, "hak_policy_name not exported");
	static const char *const kinds[] = {"ownership", "superslab", "trim"};
	for (int i = 0; i < 3; i++) {
		const char *got = name(kinds[i]);
		REL_CHECK(got && !strcmp(got, argv[i + 1]), "%s policy is '%s', expected '%s'", kinds[i],
			  got ? got : "(null)", argv[i + 1]);
	}
	pthread_t t;
	REL_CHECK(pthread_create(&t, NULL, work, (void *)1) == 0, "pthread_create failed");
	work((void *)2);
	REL_CHECK(pthread_join(t, NULL) == 0, "pthread_join failed");
	printf("plugin_fallback: ownership %s, superslab %s, trim %s; %d blocks ok\n", argv[1], argv[2], argv[3], 2 * N);
	return 0;
}
