/* hakmem only: the public functions of include/hakmem.h as a program sees them under LD_PRELOAD:
 * hak_stats_print to any FILE * (a file, a pipe, a memory stream), hak_policy_name/version for
 * known and unknown kinds, hak_trim and hak_active_blocks. */
#include "e2e.h"

typedef void (*stats_fn)(FILE *, int);
typedef const char *(*name_fn)(const char *);
typedef size_t (*trim_fn)(void);
typedef long long (*active_fn)(void);

/* What hak_stats_print wrote to a stream of each kind, checked for the JSON form. */
static void check_json_text(const char *what, const char *buf, size_t len)
{
    CHECK(len > 0, "hak_stats_print(%s stream, json) wrote nothing", what);
    CHECK(strncmp(buf, "{\"policies\"", 11) == 0, "hak_stats_print(%s stream, json) wrote: %.60s", what, buf);
    CHECK(buf[len - 1] == '\n' && memchr(buf, '\n', len) == buf + len - 1,
          "hak_stats_print(%s stream, json) did not write exactly one line", what);
}

int main(void)
{
    if (!e2e_is_hakmem()) {
        e2e_note("hakapi: not hakmem, nothing to check");
        return 0;
    }
    stats_fn print = (stats_fn)dlsym(RTLD_DEFAULT, "hak_stats_print");
    name_fn name = (name_fn)dlsym(RTLD_DEFAULT, "hak_policy_name");
    name_fn version = (name_fn)dlsym(RTLD_DEFAULT, "hak_policy_version");
    trim_fn trim = (trim_fn)dlsym(RTLD_DEFAULT, "hak_trim");
    active_fn active = (active_fn)dlsym(RTLD_DEFAULT, "hak_active_blocks");
    CHECK(print && name && version && trim && active, "a function of include/hakmem.h is not exported");

    const char *kinds[] = { "trim", "superslab", "ownership" };
    for (int i = 0; i < 3; i++) {
        CHECK(name(kinds[i]) && *name(kinds[i]), "hak_policy_name(\"%s\") is empty", kinds[i]);
        CHECK(version(kinds[i]) && *version(kinds[i]), "hak_policy_version(\"%s\") is empty", kinds[i]);
    }
    CHECK(name("no-such-kind") == NULL, "hak_policy_name of an unknown kind is not NULL");
    CHECK(version("no-such-kind") == NULL, "hak_policy_version of an unknown kind is not NULL");
    CHECK(name(NULL) == NULL, "hak_policy_name(NULL) is not NULL");

    void *keep = malloc(100);
    CHECK(active() >= 1, "hak_active_blocks() is %lld with a block live", active());
    trim();
    CHECK(active() >= 1, "hak_active_blocks() is %lld after hak_trim with a block live", active());
    free(keep);

    /* A temporary file. */
    FILE *f = tmpfile();
    CHECK(f, "tmpfile failed");
    fputs("", f);
    print(f, 1);
    fflush(f);
    long n = ftell(f);
    char buf[65536];
    rewind(f);
    CHECK(n > 0 && n < (long)sizeof buf && fread(buf, 1, (size_t)n, f) == (size_t)n, "reading the stats back failed (%ld bytes)", n);
    check_json_text("tmpfile", buf, (size_t)n);
    fclose(f);

    /* Text already buffered in the stream comes first. */
    f = tmpfile();
    CHECK(f, "tmpfile failed");
    fputs("before\n", f);
    print(f, 0);
    fputs("after\n", f);
    fflush(f);
    n = ftell(f);
    rewind(f);
    CHECK(n > 0 && n < (long)sizeof buf && fread(buf, 1, (size_t)n, f) == (size_t)n, "reading the table back failed");
    buf[n] = 0;
    CHECK(strncmp(buf, "before\n", 7) == 0 && n > 14 && strcmp(buf + n - 6, "after\n") == 0,
          "hak_stats_print(table) mixed up the stream's order: %.40s", buf);
    CHECK(strstr(buf, "{\"policies\"") == NULL, "hak_stats_print(out, 0) printed JSON, want the table");
    fclose(f);

    /* A memory stream: a FILE * with no file descriptor. */
    char *mbuf = NULL;
    size_t mlen = 0;
    FILE *m = open_memstream(&mbuf, &mlen);
    CHECK(m, "open_memstream failed");
    print(m, 1);
    fclose(m);
    check_json_text("open_memstream", mbuf ? mbuf : "", mlen);
    free(mbuf);
    return 0;
}
