/* Layout: a small program (a few blocks of each kind, stdio, one thread) must leave every page of
 * libhakmem's code segment behind its hot window untouched: the cold code, the unwind tables and
 * the cold files' strings (core/layout.ld). The kernel maps a library's pages in 64 KB windows
 * around each fault, so one touch of a cold byte costs the program up to 64 KB of resident memory.
 *
 * tools/check-layout checks where the linker put each section; this checks what a run touches,
 * so a string or a function that start-up or the everyday paths now use from a cold file is
 * caught (exit, after main, is check-layout's: .fini must sit in the hot window). Residency comes from /proc/self/pagemap (the present bit needs no privilege). Run with
 * the built-in configuration only: a configuration file runs the INI parser, which is cold. */
#include "e2e.h"

#include <elf.h>
#include <malloc.h>
#include <pthread.h>

enum { WINDOW = 0x10000, PAGE = 4096 };

struct section {
    char name[32];
    uint64_t addr, size;
};
static struct section secs[128];
static int nsecs;

/* The allocated sections of the library file, from its section headers. */
static void read_sections(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "cannot open %s", path);
    Elf64_Ehdr eh;
    CHECK(pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh, "%s: short ELF header", path);
    CHECK(eh.e_shentsize == sizeof(Elf64_Shdr) && eh.e_shnum <= 128, "%s: unexpected section table", path);
    Elf64_Shdr sh[128], *names;
    ssize_t want = (ssize_t)(eh.e_shnum * sizeof(Elf64_Shdr));
    CHECK(pread(fd, sh, (size_t)want, (off_t)eh.e_shoff) == want, "%s: short section table", path);
    names = &sh[eh.e_shstrndx];
    char *strtab = malloc(names->sh_size);
    CHECK(strtab && pread(fd, strtab, names->sh_size, (off_t)names->sh_offset) == (ssize_t)names->sh_size,
          "%s: cannot read the section names", path);
    for (int i = 0; i < eh.e_shnum; i++) {
        if (!(sh[i].sh_flags & SHF_ALLOC) || sh[i].sh_name >= names->sh_size)
            continue;
        struct section *s = &secs[nsecs++];
        snprintf(s->name, sizeof s->name, "%s", strtab + sh[i].sh_name);
        s->addr = sh[i].sh_addr;
        s->size = sh[i].sh_size;
    }
    free(strtab);
    close(fd);
}

static const struct section *find(const char *name)
{
    for (int i = 0; i < nsecs; i++)
        if (strcmp(secs[i].name, name) == 0)
            return &secs[i];
    return NULL;
}

static const char *section_at(uint64_t off)
{
    for (int i = 0; i < nsecs; i++)
        if (secs[i].addr <= off && off < secs[i].addr + secs[i].size)
            return secs[i].name;
    return "padding";
}

static void *worker(void *arg)
{
    char *p = malloc(100);
    CHECK(p, "malloc in a thread returned NULL");
    snprintf(p, 100, "%s", (const char *)arg);
    free(arg);
    return p;
}

/* What a small program does: each entry point, large and small, stdio, and one thread. */
static void small_program(void)
{
    void *keep[64];
    for (int i = 0; i < 64; i++) {
        keep[i] = malloc(opaque(16 + 37 * (size_t)i));
        CHECK(keep[i], "malloc returned NULL");
    }
    char *z = calloc(10, 100), *big = malloc(opaque(1 << 20)), *al = NULL;
    CHECK(z && big && posix_memalign((void **)&al, 256, 1000) == 0, "an allocation failed");
    big = realloc(big, opaque(3 << 20));
    CHECK(big, "realloc returned NULL");
    pthread_t t;
    void *back;
    CHECK(pthread_create(&t, NULL, worker, strdup("from a thread")) == 0, "pthread_create failed");
    pthread_join(t, &back);
    CHECK(back && strcmp(back, "from a thread") == 0 && malloc_usable_size(back) >= 100,
          "the thread's block came back wrong");
    printf("a small program: it prints\n"); /* stdio's buffer, as any program that prints has */
    fflush(stdout);
    free(back);
    for (int i = 0; i < 64; i += 2)
        free(keep[i]);
    for (int i = 1; i < 64; i += 2)
        keep[i] = realloc(keep[i], opaque(200));
    for (int i = 1; i < 64; i += 2)
        free(keep[i]);
    free(z);
    free(big);
    free(al);
}

int main(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "hak_stats_print");
    CHECK(sym && dladdr(sym, &info) && info.dli_fname, "hakmem is not this process's allocator");
    read_sections(info.dli_fname);
    small_program();

    /* Every page wholly inside a cold section and behind the window where the hot code ends. */
    static const char *const cold_names[] = {".text.hak_cold", ".eh_frame_hdr", ".eh_frame", ".rodata.hak_cold"};
    const struct section *text = find(".text");
    CHECK(text && find(".text.hak_cold"), "%s has no .text or no .text.hak_cold: was it linked with "
          "core/layout.ld?", info.dli_fname);
    uintptr_t base = (uintptr_t)info.dli_fbase;
    uintptr_t from = (base + text->addr + text->size + WINDOW - 1) & ~(uintptr_t)(WINDOW - 1);
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    CHECK(pm >= 0, "cannot open /proc/self/pagemap");
    int resident = 0, checked = 0;
    uintptr_t first = 0;
    for (size_t i = 0; i < sizeof cold_names / sizeof cold_names[0]; i++) {
        const struct section *c = find(cold_names[i]);
        if (!c) /* no unwind tables in a build without them, say */
            continue;
        uintptr_t a = (base + c->addr + PAGE - 1) & ~(uintptr_t)(PAGE - 1), b = base + c->addr + c->size;
        for (uintptr_t pg = a < from ? from : a; pg + PAGE <= b; pg += PAGE, checked++) {
            uint64_t e;
            CHECK(pread(pm, &e, sizeof e, (off_t)(pg / PAGE * sizeof e)) == (ssize_t)sizeof e,
                  "short read of /proc/self/pagemap");
            if (e >> 63 && !resident++)
                first = pg;
        }
    }
    close(pm);
    CHECK(checked > 0, "no cold page lies behind the hot code's window in %s", info.dli_fname);
    if (resident)
        FAIL("%d of %d cold pages of %s are resident, the first at offset %#lx (%s): a run that needs "
             "no configuration touched cold code or data, or it shares a 64 KB window with hot data "
             "(core/layout.ld)",
             resident, checked, info.dli_fname, (unsigned long)(first - base), section_at(first - base));
    printf("layout: none of the %d cold pages (behind offset %#lx) is resident\n", checked,
           (unsigned long)(from - base));
    return 0;
}
