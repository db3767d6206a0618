/* Checks that LD_PRELOAD really put hakmem in charge of this process and, if asked, that the
 * configuration picked the expected policies (the config file and plugins really loaded).
 * Usage: loaded [ownership-name [superslab-name [trim-name]]] */
#include "e2e.h"

typedef const char *(*policy_name_fn)(const char *kind);

int main(int argc, char **argv)
{
    CHECK(e2e_is_hakmem(), "hakmem is not loaded: hak_stats_print not found (LD_PRELOAD ignored?)");
    Dl_info di;
    CHECK(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &di) && di.dli_fname && strstr(di.dli_fname, "hakmem"),
          "malloc resolves to %s, not hakmem", di.dli_fname ? di.dli_fname : "?");
    policy_name_fn name = (policy_name_fn)dlsym(RTLD_DEFAULT, "hak_policy_name");
    CHECK(name, "hak_policy_name not exported");
    const char *kinds[] = { "ownership", "superslab", "trim" };
    for (int i = 1; i < argc && i <= 3; i++) {
        const char *got = name(kinds[i - 1]);
        if (strcmp(argv[i], "-") == 0)
            continue;
        CHECK(got && strcmp(got, argv[i]) == 0, "%s policy is \"%s\", expected \"%s\"", kinds[i - 1],
              got ? got : "(null)", argv[i]);
    }
    void *p = malloc(100);
    CHECK(p, "malloc(100) failed");
    free(p);
    return 0;
}
