/* test_elf_check.c: the ELF check a plugin passes before dlopen (core/elf_check.c), fed real
 * shared objects (a fixture plugin built by `make`, the installed libc, the dynamic loader) and
 * copies of them cut short or with one header field changed: every cut and every damaged field is
 * refused with its own reason, every real shared object passes, and the descriptor variant says
 * exactly what the buffer variant says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <link.h>

#include "../fixtures/unit_helpers.h"
#include "elf_check.h"

#define GOOD_SO FIXTURE_SO_DIR "/ownership_good.so"

static unsigned char good[1 << 20], work[1 << 20];
static size_t good_len;

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("cannot open %s (run through `make test-unit`)", path);
	size_t len = 0;
	for (ssize_t n; (n = read(fd, buf + len, cap - len)) > 0;)
		len += (size_t)n;
	close(fd);
	if (len == cap)
		fail_msg("%s is larger than %zu bytes", path, cap);
	return len;
}

static int group_setup(void **state)
{
	good_len = read_file(GOOD_SO, good, sizeof good);
	return helpers_setup(state);
}

/* The check of buf, which must refuse it with a reason holding every string given. */
static void expect_refused(const void *buf, size_t len, ...)
{
	char why[300];
	int rc = hak__elf_check_buffer(buf, len, why, sizeof why);
	if (rc != ENOEXEC)
		fail_msg("check of %zu bytes returned %d, expected ENOEXEC (why: %s)", len, rc, rc ? why : "");
	va_list ap;
	va_start(ap, len);
	for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
		if (!strstr(why, s))
			fail_msg("reason '%s' lacks '%s'", why, s);
	va_end(ap);
	assert_null(strchr(why, '\n'));
}
#define EXPECT_REFUSED(buf, len, ...) expect_refused((buf), (len), __VA_ARGS__, (const char *)NULL)

static void expect_ok(const void *buf, size_t len, const char *what)
{
	char why[300];
	int rc = hak__elf_check_buffer(buf, len, why, sizeof why);
	if (rc != 0)
		fail_msg("%s refused: %s", what, why);
}

/* ---- Views into the working copy ----------------------------------------------------------------- */

static ElfW(Ehdr) *eh(void)
{
	return (ElfW(Ehdr) *)work;
}

static ElfW(Phdr) *ph(unsigned i)
{
	return (ElfW(Phdr) *)(work + eh()->e_phoff) + i;
}

/* Index of the n-th (0-based) program header of a type, or -1. */
static int find_ph(uint32_t type, int n)
{
	for (unsigned i = 0; i < eh()->e_phnum; i++)
		if (ph(i)->p_type == type && n-- == 0)
			return (int)i;
	return -1;
}

static void reset(void)
{
	memcpy(work, good, good_len);
}

/* The largest p_offset + p_filesz over the PT_LOAD segments of the working copy. */
static size_t load_end(void)
{
	size_t end = 0;
	for (unsigned i = 0; i < eh()->e_phnum; i++)
		if (ph(i)->p_type == PT_LOAD && ph(i)->p_offset + ph(i)->p_filesz > end)
			end = ph(i)->p_offset + ph(i)->p_filesz;
	return end;
}

/* The dynamic entry of `tag` in the working copy (the file offset of PT_DYNAMIC is its address
 * minus its PT_LOAD's address plus that segment's offset; in a plugin built by ld they agree). */
static ElfW(Dyn) *dyn_entry(int64_t tag)
{
	ElfW(Phdr) *d = ph((unsigned)find_ph(PT_DYNAMIC, 0));
	for (ElfW(Dyn) *e = (ElfW(Dyn) *)(work + d->p_offset); e->d_tag != DT_NULL; e++)
		if (e->d_tag == tag)
			return e;
	return NULL;
}

/* ---- Tests --------------------------------------------------------------------------------------- */

static void test_real_objects_pass(void **state)
{
	(void)state;
	expect_ok(good, good_len, GOOD_SO);
	/* The system's own shared objects: a PT_TLS, a PT_INTERP, many PT_NOTEs, versions. */
	static const char *const system[] = {"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6",
					     "/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libinih.so.1"};
	static unsigned char other[1 << 23];
	for (size_t i = 0; i < sizeof system / sizeof system[0]; i++) {
		if (access(system[i], R_OK) != 0)
			continue; /* another distribution or machine */
		size_t n = read_file(system[i], other, sizeof other);
		expect_ok(other, n, system[i]);
	}
	/* Every plugin `make` built. */
	static const char *const plugins[] = {"trim_eager", "trim_idle", "trim_none", "trim_decay", "superslab_fixed",
					      "superslab_adaptive", "superslab_example", "ownership_tls",
					      "ownership_central"};
	for (size_t i = 0; i < sizeof plugins / sizeof plugins[0]; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/build/policies/%s.so", HAK_SOURCE_ROOT, plugins[i]);
		if (access(path, R_OK) != 0)
			fail_msg("%s missing: run `make` first", path);
		size_t n = read_file(path, other, sizeof other);
		expect_ok(other, n, path);
	}
}

static void test_not_elf(void **state)
{
	(void)state;
	EXPECT_REFUSED(good, 0, "empty file (0 bytes), expected an ELF shared object");
	EXPECT_REFUSED(NULL, 0, "empty file");
	EXPECT_REFUSED("\x7f" "EL", 3, "ELF file of 3 bytes", "truncated");
	EXPECT_REFUSED("#!/", 3, "not an ELF file (3 bytes)");
	EXPECT_REFUSED("!<arch>\n", 8, "not an ELF file (starts with 21 3c 61 72)", "expected an ELF shared object");
	/* Random bytes, a few sizes; deterministic. */
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (size_t n = 1; n <= 65536; n *= 4) {
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			work[i] = (unsigned char)x;
		}
		if (n >= 4 && !memcmp(work, ELFMAG, SELFMAG))
			work[0] = 0;
		EXPECT_REFUSED(work, n, "not an ELF file");
	}
	/* ELF magic, then garbage: a header field is named. */
	memcpy(work, ELFMAG, SELFMAG);
	EXPECT_REFUSED(work, 65536, "ELF");
}

/* Every cut of a real plugin is refused; the truncation names the PT_LOAD segment that would fault. */
static void test_every_cut_refused(void **state)
{
	(void)state;
	reset();
	size_t end = load_end();
	assert_true(end > 4096 && end < good_len);
	for (size_t n = 1; n < good_len; n++) {
		char why[300];
		if (hak__elf_check_buffer(good, n, why, sizeof why) != ENOEXEC)
			fail_msg("a cut at %zu of %zu bytes was accepted", n, good_len);
	}
	/* The cuts of the issue: 700, 4096, 6164, 9000 bytes (when the plugin is that long), 16 bytes
	 * before the end of the last PT_LOAD's file extent. */
	const size_t cuts[] = {700, 4096, 6164, 9000, end - 16};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		if (cuts[i] >= good_len)
			continue;
		char size[64];
		snprintf(size, sizeof size, "ELF file of %zu bytes, expected at least", cuts[i]);
		EXPECT_REFUSED(good, cuts[i], size, "truncated");
		if (cuts[i] < end) {
			snprintf(size, sizeof size, "ends at byte %zu", end);
			EXPECT_REFUSED(good, cuts[i], "PT_LOAD (program header ", size);
		}
	}
	/* Without section headers (sstrip), the PT_LOAD extents alone decide: shorter than the last
	 * segment's end is refused, from there on it loads. */
	eh()->e_shoff = 0;
	eh()->e_shnum = 0;
	eh()->e_shstrndx = 0;
	for (size_t n = 1; n < end; n++) {
		char why[300];
		if (hak__elf_check_buffer(work, n, why, sizeof why) != ENOEXEC)
			fail_msg("without section headers, a cut at %zu (segments end at %zu) was accepted", n, end);
	}
	char want[80];
	snprintf(want, sizeof want, "ELF file of %zu bytes, expected at least %zu (PT_LOAD", end - 16, end);
	EXPECT_REFUSED(work, end - 16, want, "truncated");
	expect_ok(work, end, "the plugin without section headers, cut at the end of its last segment");
	expect_ok(work, good_len, "the plugin without section headers");
	/* A program header table past the end. */
	reset();
	EXPECT_REFUSED(good, 100, "ELF file of 100 bytes", "the program header table ends at byte");
}

static void test_header_fields(void **state)
{
	(void)state;
	reset();
	work[EI_CLASS] = ELFCLASS32;
	EXPECT_REFUSED(work, good_len, "ELF class 1 (32-bit), expected 2 (64-bit, this process's)");
	reset();
	work[EI_CLASS] = 7;
	EXPECT_REFUSED(work, good_len, "ELF class 7 (invalid)");
	reset();
	work[EI_DATA] = ELFDATA2MSB;
	EXPECT_REFUSED(work, good_len, "ELF byte order 2 (big-endian), expected 1 (little-endian, this process's)");
	reset();
	work[EI_VERSION] = 2;
	EXPECT_REFUSED(work, good_len, "ELF version 2, expected 1");
	reset();
	eh()->e_version = 0;
	EXPECT_REFUSED(work, good_len, "ELF version 0, expected 1");
	reset();
	work[EI_OSABI] = ELFOSABI_FREEBSD;
	EXPECT_REFUSED(work, good_len, "ELF OS ABI 9, expected 0 (System V) or 3 (GNU)");
	reset();
	eh()->e_type = ET_EXEC;
	EXPECT_REFUSED(work, good_len, "ELF type 2 (an executable), expected 3 (ET_DYN, a shared object)");
	reset();
	eh()->e_type = ET_REL;
	EXPECT_REFUSED(work, good_len, "ELF type 1 (a relocatable object, not linked)");
	/* Another machine: the same plugin with e_machine patched, as a cross build would have it. */
	reset();
	eh()->e_machine = EM_AARCH64;
	EXPECT_REFUSED(work, good_len, "ELF machine 183 (AArch64), expected 62 (x86-64, this process's)");
	reset();
	eh()->e_machine = EM_386;
	EXPECT_REFUSED(work, good_len, "ELF machine 3 (i386)");
	reset();
	eh()->e_machine = 0x1234;
	EXPECT_REFUSED(work, good_len, "ELF machine 4660 (unknown)");
	reset();
	eh()->e_ehsize = 10;
	EXPECT_REFUSED(work, good_len, "ELF header size 10, expected 64");
	reset();
	eh()->e_phentsize = 32;
	EXPECT_REFUSED(work, good_len, "program header entry size 32, expected 56");
	reset();
	eh()->e_phnum = 0;
	EXPECT_REFUSED(work, good_len, "no program headers");
	reset();
	eh()->e_phnum = 0xffff;
	EXPECT_REFUSED(work, good_len, "65535 program headers, expected at most 1024");
	reset();
	eh()->e_phoff = good_len - 8;
	EXPECT_REFUSED(work, good_len, "the program header table ends at byte", "truncated");
	reset();
	eh()->e_phoff = UINT64_MAX - 8;
	EXPECT_REFUSED(work, good_len, "program header table offset 0xfffffffffffffff7, expected one inside the file");
	reset();
	eh()->e_shoff = UINT64_MAX - 8;
	EXPECT_REFUSED(work, good_len, "section header table offset", "expected one inside the file");
	/* A 32-bit file shorter than a 64-bit header is named by its class, not as truncated. */
	reset();
	work[EI_CLASS] = ELFCLASS32;
	EXPECT_REFUSED(work, 52, "ELF class 1 (32-bit)");
	EXPECT_REFUSED(good, 40, "ELF file of 40 bytes, expected at least 64 (the ELF header): truncated");
}

static void test_segments(void **state)
{
	(void)state;
	int first = find_ph(PT_LOAD, 0), last = -1;
	assert_true(first >= 0);
	for (int n = 0; find_ph(PT_LOAD, n) >= 0; n++)
		last = find_ph(PT_LOAD, n);
	reset();
	ph((unsigned)last)->p_filesz = ph((unsigned)last)->p_memsz + 1;
	EXPECT_REFUSED(work, good_len, "file size", "expected at most its memory size");
	reset();
	ph((unsigned)first)->p_align = 0x3000;
	EXPECT_REFUSED(work, good_len, "alignment 0x3000, expected a power of two of at least the page size");
	reset();
	ph((unsigned)first)->p_align = 16;
	EXPECT_REFUSED(work, good_len, "alignment 0x10, expected a power of two of at least the page size");
	reset();
	ph((unsigned)last)->p_vaddr += 8;
	EXPECT_REFUSED(work, good_len, "differ modulo its alignment");
	reset();
	ph((unsigned)last)->p_vaddr = ph((unsigned)first)->p_vaddr;
	ph((unsigned)last)->p_offset = ph((unsigned)first)->p_offset;
	EXPECT_REFUSED(work, good_len, "expected it after the previous one");
	reset();
	ph((unsigned)last)->p_memsz = UINT64_MAX - 0x1000;
	EXPECT_REFUSED(work, good_len, "wraps around");
	reset();
	ph((unsigned)last)->p_offset = UINT64_MAX - 4;
	EXPECT_REFUSED(work, good_len, "wraps around");
	reset();
	for (unsigned i = 0; i < eh()->e_phnum; i++)
		if (ph(i)->p_type == PT_LOAD)
			ph(i)->p_type = PT_NULL;
	EXPECT_REFUSED(work, good_len, "no PT_LOAD segment, expected at least one");
	int dyn = find_ph(PT_DYNAMIC, 0), note = find_ph(PT_NOTE, 0);
	assert_true(dyn >= 0 && note >= 0);
	reset();
	ph((unsigned)dyn)->p_type = PT_NULL;
	EXPECT_REFUSED(work, good_len, "0 PT_DYNAMIC segments, expected one");
	reset();
	*ph((unsigned)note) = *ph((unsigned)dyn);
	EXPECT_REFUSED(work, good_len, "2 PT_DYNAMIC segments, expected one");
	reset();
	ph((unsigned)dyn)->p_vaddr = ph((unsigned)last)->p_vaddr + ph((unsigned)last)->p_filesz; /* the .bss */
	EXPECT_REFUSED(work, good_len, "PT_DYNAMIC (program header", "expected it inside the file part of a PT_LOAD");
	reset();
	ph((unsigned)note)->p_vaddr = 0x40000000;
	EXPECT_REFUSED(work, good_len, "PT_NOTE (program header");
	reset();
	ph((unsigned)dyn)->p_filesz = 8;
	EXPECT_REFUSED(work, good_len, "PT_DYNAMIC of 8 bytes, expected at least one entry");
}

static void test_dynamic_section(void **state)
{
	(void)state;
	reset();
	ElfW(Phdr) *d = ph((unsigned)find_ph(PT_DYNAMIC, 0));
	size_t n = d->p_filesz / sizeof(ElfW(Dyn));
	ElfW(Dyn) *e = (ElfW(Dyn) *)(work + d->p_offset);
	for (size_t i = 0; i < n; i++)
		if (e[i].d_tag == DT_NULL)
			e[i].d_tag = DT_DEBUG;
	EXPECT_REFUSED(work, good_len, "without a DT_NULL end");
	static const struct {
		int64_t tag;
		uint64_t value;
		bool drop; /* the entry becomes DT_DEBUG instead of taking value */
		const char *why;
	} cases[] = {
		{DT_STRTAB, 0, true, "no string table (DT_STRTAB, DT_STRSZ)"},
		{DT_STRSZ, 0, false, "no string table"},
		{DT_SYMTAB, 0, true, "no symbol table (DT_SYMTAB)"},
		{DT_STRTAB, 0x7fff0000, false, "the string table (DT_STRTAB) at 0x7fff0000"},
		{DT_STRSZ, 0x100000, false, "the string table (DT_STRTAB)"},
		{DT_SYMTAB, 0x7fff0000, false, "the symbol table (DT_SYMTAB) at 0x7fff0000"},
		{DT_GNU_HASH, 0x7fff0000, false, "the hash table (DT_GNU_HASH)"},
		{DT_RELA, 0x7fff0000, false, "the relocations (DT_RELA)"},
		{DT_RELASZ, 0x1000000, false, "the relocations (DT_RELA)"},
		{DT_INIT_ARRAYSZ, 0x1000000, false, "the init array (DT_INIT_ARRAY)"},
		{DT_SYMENT, 12, false, "symbol entry size 12, expected 24"},
		{DT_RELAENT, 12, false, "relocation entry size 12, expected 24"},
		{DT_NEEDED, 0x100000, false, "DT_NEEDED string at offset 1048576, expected it inside the string table"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		reset();
		ElfW(Dyn) *x = dyn_entry(cases[i].tag);
		if (!x)
			fail_msg("the fixture has no dynamic entry %lld", (long long)cases[i].tag);
		if (cases[i].drop)
			x->d_tag = DT_DEBUG;
		else
			x->d_un.d_val = cases[i].value;
		EXPECT_REFUSED(work, good_len, cases[i].why);
	}
	/* No hash table at all. */
	reset();
	ElfW(Dyn) *h;
	while ((h = dyn_entry(DT_GNU_HASH)) || (h = dyn_entry(DT_HASH)))
		h->d_tag = DT_DEBUG;
	EXPECT_REFUSED(work, good_len, "no hash table");
	/* A string table that does not end with NUL. */
	reset();
	ElfW(Dyn) *sz = dyn_entry(DT_STRSZ);
	sz->d_un.d_val -= 1;
	EXPECT_REFUSED(work, good_len, "the string table does not end with a NUL byte");
}

/* The descriptor variant reads the file with pread and says the same. */
static void test_fd_variant(void **state)
{
	(void)state;
	char why_fd[300], why_buf[300];
	const size_t cuts[] = {0, 3, 40, 700, 4096, 6164, 9000, good_len - 1, good_len};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		if (cuts[i] > good_len)
			continue;
		const char *path = tmp_file("cut.so", good, cuts[i], 0644);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		int a = hak__elf_check_fd(fd, why_fd, sizeof why_fd);
		int b = hak__elf_check_buffer(good, cuts[i], why_buf, sizeof why_buf);
		close(fd);
		assert_int_equal(a, b);
		if (cuts[i] == good_len)
			assert_int_equal(a, 0);
		else
			assert_string_equal(why_fd, why_buf);
	}
	/* A descriptor that cannot be read. */
	int fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	int rc = hak__elf_check_fd(fd, why_fd, sizeof why_fd);
	close(fd);
	assert_true(rc == EIO || rc == ENOEXEC);
	assert_int_equal(hak__elf_check_fd(-1, why_fd, sizeof why_fd), EIO);
	assert_non_null(strstr(why_fd, "cannot fstat"));
	/* A tiny reason buffer is still a NUL-terminated string. */
	char tiny[8];
	assert_int_equal(hak__elf_check_buffer(good, 700, tiny, sizeof tiny), ENOEXEC);
	assert_true(memchr(tiny, '\0', sizeof tiny) != NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_objects_pass),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_every_cut_refused),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_dynamic_section),
		cmocka_unit_test(test_fd_variant),
	};
	return cmocka_run_group_tests_name("elf_check", tests, group_setup, helpers_teardown);
}
