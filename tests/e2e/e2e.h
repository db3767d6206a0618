/* Shared helpers for the end-to-end test programs: failure reporting, hakmem detection,
 * opaque values that stop the compiler from folding allocator calls, content patterns.
 * Each program exits 0 on success and prints one line on stderr on failure. */
#ifndef HAK_E2E_H
#define HAK_E2E_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One clear line, then exit 1. The line names the program, the source line and the problem. */
#define FAIL(...) e2e_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)

__attribute__((noreturn, format(printf, 3, 4), unused))
static void e2e_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
    fflush(stderr);
    _exit(1);
}

/* Notes (skipped sub-checks and the like) go to stdout: stderr stays empty on success. */
__attribute__((format(printf, 1, 2), unused))
static void e2e_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* True when hakmem is the allocator of this process (it exports hak_stats_print). */
__attribute__((unused))
static int e2e_is_hakmem(void)
{
    return dlsym(RTLD_DEFAULT, "hak_stats_print") != NULL;
}

/* Looks up a libc-level allocator name (such as __libc_malloc) and returns it only if it lives in
 * the same object as this process's malloc; mixing allocators would corrupt the heap. Missing or
 * foreign names give NULL (with a note), except under hakmem, which must provide them all. */
__attribute__((unused))
static void *e2e_alloc_sym(const char *name)
{
    void *s = dlsym(RTLD_DEFAULT, name);
    Dl_info a, b;
    if (s && dladdr(s, &a) && dladdr(dlsym(RTLD_DEFAULT, "malloc"), &b) && a.dli_fbase == b.dli_fbase)
        return s;
    if (e2e_is_hakmem()) {
        fprintf(stderr, "hakmem does not provide %s (%s)\n", name, s ? "found in another object" : "not found");
        _exit(1);
    }
    printf("note: %s %s, its checks skipped\n", name, s ? "belongs to another allocator" : "is not exported here");
    fflush(stdout);
    return NULL;
}

/* A value the compiler cannot see through, so calls with absurd sizes are not folded
 * or warned about at compile time. */
__attribute__((unused))
static size_t opaque(size_t x)
{
    volatile size_t v = x;
    return v;
}

/* Keeps a pointer alive in the compiler's eyes. */
__attribute__((unused))
static void *volatile e2e_sink;

/* Deterministic fill and check: byte i of a block tagged `tag` is byte i%8 of pat_word(tag, i/8),
 * so fills and checks go a word at a time. */
static inline uint64_t pat_word(uint64_t tag, size_t k)
{
    uint64_t x = (tag * 0x9E3779B97F4A7C15ull + k + 1) * 0xD6E8FEB86659FD93ull;
    return x ^ (x >> 32);
}

static inline unsigned char pat_byte(uint64_t tag, size_t i)
{
    return (unsigned char)(pat_word(tag, i / 8) >> (8 * (i % 8)));
}

__attribute__((unused))
static void pat_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    size_t words = n / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pat_word(tag, k);
        memcpy(b + 8 * k, &w, 8);
    }
    for (size_t i = words * 8; i < n; i++)
        b[i] = pat_byte(tag, i);
}

/* Returns the index of the first wrong byte, or (size_t)-1 if all n bytes match. */
__attribute__((unused))
static size_t pat_check(const void *p, size_t n, uint64_t tag)
{
    const unsigned char *b = p;
    size_t words = n / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w;
        memcpy(&w, b + 8 * k, 8);
        if (w != pat_word(tag, k)) {
            for (size_t i = 8 * k;; i++)
                if (b[i] != pat_byte(tag, i))
                    return i;
        }
    }
    for (size_t i = words * 8; i < n; i++)
        if (b[i] != pat_byte(tag, i))
            return i;
    return (size_t)-1;
}

/* Small fast PRNG (xorshift64*), one per thread. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A value from /proc/self/status in kB (e.g. "VmHWM"), or -1. */
__attribute__((unused))
static long proc_status_kb(const char *key)
{
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resident kB (VmRSS), or the test fails. Read with stdio: hakmem serves its buffer, which is
 * fine. */
__attribute__((unused))
static long rss_kb(void)
{
    long kb = proc_status_kb("VmRSS");
    CHECK(kb >= 0, "cannot read VmRSS from /proc/self/status");
    return kb;
}

/* Number of lines in /proc/self/maps, counted with read(2) so that counting allocates nothing. */
__attribute__((unused))
static long proc_maps_count(void)
{
    char buf[65536];
    long lines = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

#endif
