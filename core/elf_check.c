/* elf_check.c: the ELF check of a plugin file before dlopen (the rules are in elf_check.h). Every
 * byte is read through one bounded reader, from a descriptor with pread or from a buffer, so the
 * check itself can never touch a byte past the end of the file. */
#include "elf_check.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- This process's ELF identity -------------------------------------------------------------- */

#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#elif defined(__arm__)
#define NATIVE_MACHINE EM_ARM
#elif defined(__riscv)
#define NATIVE_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define NATIVE_MACHINE EM_PPC64
#elif defined(__powerpc__)
#define NATIVE_MACHINE EM_PPC
#elif defined(__s390__)
#define NATIVE_MACHINE EM_S390
#elif defined(__loongarch__)
#define NATIVE_MACHINE 258 /* EM_LOONGARCH */
#elif defined(__mips__)
#define NATIVE_MACHINE EM_MIPS
#elif defined(__sparc__)
#define NATIVE_MACHINE EM_SPARCV9
#else
#error "elf_check.c: add this machine's EM_ value"
#endif
#define NATIVE_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386: return "i386";
	case EM_ARM: return "ARM";
	case EM_X86_64: return "x86-64";
	case EM_AARCH64: return "AArch64";
	case EM_RISCV: return "RISC-V";
	case EM_PPC: return "PowerPC";
	case EM_PPC64: return "PowerPC64";
	case EM_S390: return "S/390";
	case EM_MIPS: return "MIPS";
	case EM_SPARCV9: return "SPARC V9";
	case EM_IA_64: return "IA-64";
	case 258: return "LoongArch";
	case EM_NONE: return "none";
	}
	return "unknown";
}

static const char *class_name(unsigned c)
{
	return c == ELFCLASS32 ? "32-bit" : c == ELFCLASS64 ? "64-bit" : "invalid";
}

static const char *data_name(unsigned d)
{
	return d == ELFDATA2LSB ? "little-endian" : d == ELFDATA2MSB ? "big-endian" : "invalid";
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case ET_NONE: return "no type";
	case ET_REL: return "a relocatable object, not linked";
	case ET_EXEC: return "an executable";
	case ET_DYN: return "a shared object";
	case ET_CORE: return "a core file";
	}
	return "unknown";
}

/* ---- The bounded reader ----------------------------------------------------------------------- */

struct source {
	int fd;                   /* read with pread when buf is NULL */
	const unsigned char *buf; /* or these bytes */
	uint64_t size;            /* the file's size: nothing at or past it is ever read */
};

__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return ENOEXEC;
}

/* Bytes [off, off + len) of the file into dst; the caller has checked they are inside it. */
static int read_at(const struct source *s, uint64_t off, void *dst, size_t len, char *why, size_t whylen)
{
	if (off > s->size || len > s->size - off)
		return refuse(why, whylen, "read of bytes %llu..%llu past the end (%llu bytes)",
			      (unsigned long long)off, (unsigned long long)(off + len), (unsigned long long)s->size);
	if (s->buf) {
		memcpy(dst, s->buf + off, len);
		return 0;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(s->fd, (char *)dst + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(why, whylen, "cannot read: %s", strerrordesc_np(e) ? strerrordesc_np(e) : "?");
			return EIO;
		}
		if (n == 0)
			return refuse(why, whylen, "the file shrank to %llu bytes while it was checked",
				      (unsigned long long)(off + done));
		done += (size_t)n;
	}
	return 0;
}

/* ---- The check -------------------------------------------------------------------------------- */

struct load {
	uint64_t vaddr, memsz, offset, filesz;
};

struct loads {
	struct load seg[HAK_ELF_LOADS_MAX];
	unsigned count;
};

/* The file offset of [vaddr, vaddr + len) when a PT_LOAD maps all of it from the file. */
static bool file_backed(const struct loads *l, uint64_t vaddr, uint64_t len, uint64_t *offset)
{
	for (unsigned i = 0; i < l->count; i++) {
		const struct load *s = &l->seg[i];
		if (vaddr >= s->vaddr && len <= s->filesz && vaddr - s->vaddr <= s->filesz - len) {
			if (offset)
				*offset = s->offset + (vaddr - s->vaddr);
			return true;
		}
	}
	return false;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int check_header(const ElfW(Ehdr) *h, uint64_t size, char *why, size_t whylen)
{
	const unsigned char *id = h->e_ident;
	if (id[EI_CLASS] != NATIVE_CLASS)
		return refuse(why, whylen, "ELF class %u (%s), expected %u (%s, this process's)", id[EI_CLASS],
			      class_name(id[EI_CLASS]), NATIVE_CLASS, class_name(NATIVE_CLASS));
	if (size < sizeof *h)
		return refuse(why, whylen, "ELF file of %llu bytes, expected at least %zu (the ELF header): truncated",
			      (unsigned long long)size, sizeof *h);
	if (id[EI_DATA] != NATIVE_DATA)
		return refuse(why, whylen, "ELF byte order %u (%s), expected %u (%s, this process's)", id[EI_DATA],
			      data_name(id[EI_DATA]), NATIVE_DATA, data_name(NATIVE_DATA));
	if (id[EI_VERSION] != EV_CURRENT || h->e_version != EV_CURRENT)
		return refuse(why, whylen, "ELF version %u, expected %u", id[EI_VERSION] != EV_CURRENT ? id[EI_VERSION]
			      : (unsigned)h->e_version, EV_CURRENT);
	if (id[EI_OSABI] != ELFOSABI_SYSV && id[EI_OSABI] != ELFOSABI_GNU)
		return refuse(why, whylen, "ELF OS ABI %u, expected %u (System V) or %u (GNU)", id[EI_OSABI],
			      ELFOSABI_SYSV, ELFOSABI_GNU);
	if (h->e_type != ET_DYN)
		return refuse(why, whylen, "ELF type %u (%s), expected %u (ET_DYN, a shared object)", h->e_type,
			      type_name(h->e_type), ET_DYN);
	if (h->e_machine != NATIVE_MACHINE)
		return refuse(why, whylen, "ELF machine %u (%s), expected %u (%s, this process's)", h->e_machine,
			      machine_name(h->e_machine), NATIVE_MACHINE, machine_name(NATIVE_MACHINE));
	if (h->e_ehsize < sizeof *h)
		return refuse(why, whylen, "ELF header size %u, expected %zu", h->e_ehsize, sizeof *h);
	if (h->e_phentsize != sizeof(ElfW(Phdr)))
		return refuse(why, whylen, "program header entry size %u, expected %zu", h->e_phentsize,
			      sizeof(ElfW(Phdr)));
	if (h->e_phnum == 0)
		return refuse(why, whylen, "no program headers, expected at least one PT_LOAD and a PT_DYNAMIC");
	if (h->e_phnum > HAK_ELF_PHNUM_MAX)
		return refuse(why, whylen, "%u program headers, expected at most %d", h->e_phnum, HAK_ELF_PHNUM_MAX);
	return 0;
}

/* Every extent the headers promise must be inside the file: reported as a truncation, with the
 * smallest size the file would need and what lies past its end (the PT_LOAD segment first: that
 * is what would fault). */
static int check_extents(const struct source *s, const ElfW(Ehdr) *h, char *why, size_t whylen)
{
	uint64_t ph_bytes = (uint64_t)h->e_phnum * sizeof(ElfW(Phdr)), load_end = 0, sh_end = 0;
	unsigned load_index = 0;
	if (h->e_phoff > UINT64_MAX - ph_bytes)
		return refuse(why, whylen, "program header table offset %#llx, expected one inside the file",
			      (unsigned long long)h->e_phoff);
	uint64_t ph_end = h->e_phoff + ph_bytes;
	if (ph_end <= s->size) {
		for (unsigned i = 0; i < h->e_phnum; i++) {
			ElfW(Phdr) p;
			int rc = read_at(s, h->e_phoff + (uint64_t)i * sizeof p, &p, sizeof p, why, whylen);
			if (rc)
				return rc;
			if (p.p_type != PT_LOAD)
				continue;
			if (p.p_offset > UINT64_MAX - p.p_filesz)
				return refuse(why, whylen, "PT_LOAD (program header %u): file offset %#llx + size %#llx wraps around",
					      i, (unsigned long long)p.p_offset, (unsigned long long)p.p_filesz);
			if (p.p_offset + p.p_filesz > load_end) {
				load_end = p.p_offset + p.p_filesz;
				load_index = i;
			}
		}
	}
	if (h->e_shoff) {
		uint64_t sh_bytes = (uint64_t)(h->e_shnum ? h->e_shnum : 1) * sizeof(ElfW(Shdr));
		if (h->e_shoff > UINT64_MAX - sh_bytes)
			return refuse(why, whylen, "section header table offset %#llx, expected one inside the file",
				      (unsigned long long)h->e_shoff);
		sh_end = h->e_shoff + sh_bytes;
	}
	if (ph_end <= s->size && load_end <= s->size && sh_end <= s->size)
		return 0;
	char past[160] = "";
	size_t at = 0;
	uint64_t need = ph_end > load_end ? ph_end : load_end;
	need = sh_end > need ? sh_end : need;
	if (ph_end > s->size)
		at += (size_t)snprintf(past + at, sizeof past - at, "the program header table ends at byte %llu",
				       (unsigned long long)ph_end);
	if (load_end > s->size && at < sizeof past)
		at += (size_t)snprintf(past + at, sizeof past - at, "%sPT_LOAD (program header %u) ends at byte %llu",
				       at ? ", " : "", load_index, (unsigned long long)load_end);
	if (sh_end > s->size && at < sizeof past)
		snprintf(past + at, sizeof past - at, "%sthe section header table at byte %llu", at ? ", " : "",
			 (unsigned long long)sh_end);
	return refuse(why, whylen, "ELF file of %llu bytes, expected at least %llu (%s): truncated",
		      (unsigned long long)s->size, (unsigned long long)need, past);
}

/* Program headers other than PT_LOAD that ld.so or the unwinder read in place. */
static const char *read_in_place(uint32_t type)
{
	switch (type) {
	case PT_DYNAMIC: return "PT_DYNAMIC";
	case PT_PHDR: return "PT_PHDR";
	case PT_TLS: return "PT_TLS";
	case PT_NOTE: return "PT_NOTE";
	case PT_GNU_PROPERTY: return "PT_GNU_PROPERTY";
	case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
	}
	return NULL;
}

static int check_segments(const struct source *s, const ElfW(Ehdr) *h, struct loads *l, ElfW(Phdr) *dyn,
			  char *why, size_t whylen)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), prev_end = 0;
	unsigned ndyn = 0;
	l->count = 0;
	for (unsigned i = 0; i < h->e_phnum; i++) {
		ElfW(Phdr) p;
		int rc = read_at(s, h->e_phoff + (uint64_t)i * sizeof p, &p, sizeof p, why, whylen);
		if (rc)
			return rc;
		if (p.p_type != PT_LOAD)
			continue;
		if (p.p_filesz > p.p_memsz)
			return refuse(why, whylen, "PT_LOAD (program header %u): file size %#llx, expected at most its memory size %#llx",
				      i, (unsigned long long)p.p_filesz, (unsigned long long)p.p_memsz);
		if (!is_pow2(p.p_align) || p.p_align < page)
			return refuse(why, whylen, "PT_LOAD (program header %u): alignment %#llx, expected a power of two of at least "
				      "the page size (%#llx)", i, (unsigned long long)p.p_align, (unsigned long long)page);
		if ((p.p_vaddr - p.p_offset) & (p.p_align - 1))
			return refuse(why, whylen, "PT_LOAD (program header %u): address %#llx and file offset %#llx differ modulo "
				      "its alignment %#llx, expected them congruent", i, (unsigned long long)p.p_vaddr,
				      (unsigned long long)p.p_offset, (unsigned long long)p.p_align);
		if (p.p_vaddr > UINT64_MAX - p.p_memsz)
			return refuse(why, whylen, "PT_LOAD (program header %u): address %#llx + size %#llx wraps around", i,
				      (unsigned long long)p.p_vaddr, (unsigned long long)p.p_memsz);
		if (l->count && p.p_vaddr < prev_end)
			return refuse(why, whylen, "PT_LOAD (program header %u) at %#llx, expected it after the previous one "
				      "(which ends at %#llx)", i, (unsigned long long)p.p_vaddr,
				      (unsigned long long)prev_end);
		if (l->count == HAK_ELF_LOADS_MAX)
			return refuse(why, whylen, "more than %d PT_LOAD segments", HAK_ELF_LOADS_MAX);
		l->seg[l->count++] = (struct load){p.p_vaddr, p.p_memsz, p.p_offset, p.p_filesz};
		prev_end = p.p_vaddr + p.p_memsz;
	}
	if (!l->count)
		return refuse(why, whylen, "no PT_LOAD segment, expected at least one");
	for (unsigned i = 0; i < h->e_phnum; i++) {
		ElfW(Phdr) p;
		int rc = read_at(s, h->e_phoff + (uint64_t)i * sizeof p, &p, sizeof p, why, whylen);
		if (rc)
			return rc;
		const char *name = read_in_place(p.p_type);
		if (!name)
			continue;
		if (p.p_type == PT_DYNAMIC) {
			ndyn++;
			*dyn = p;
		}
		if (p.p_filesz && !file_backed(l, p.p_vaddr, p.p_filesz, NULL))
			return refuse(why, whylen, "%s (program header %u) at %#llx..%#llx, expected it inside the file "
				      "part of a PT_LOAD segment", name, i, (unsigned long long)p.p_vaddr,
				      (unsigned long long)(p.p_vaddr + p.p_filesz));
	}
	if (ndyn != 1)
		return refuse(why, whylen, "%u PT_DYNAMIC segments, expected one (a shared object's dynamic section)", ndyn);
	if (dyn->p_filesz < sizeof(ElfW(Dyn)))
		return refuse(why, whylen, "PT_DYNAMIC of %llu bytes, expected at least one entry",
			      (unsigned long long)dyn->p_filesz);
	return 0;
}

enum { D_STRTAB, D_STRSZ, D_SYMTAB, D_SYMENT, D_HASH, D_GNU_HASH, D_RELA, D_RELASZ, D_RELAENT, D_REL, D_RELSZ,
       D_JMPREL, D_PLTRELSZ, D_INIT, D_FINI, D_INIT_ARRAY, D_INIT_ARRAYSZ, D_FINI_ARRAY, D_FINI_ARRAYSZ,
       D_VERSYM, D_VERDEF, D_VERNEED, D_COUNT };

static int dyn_slot(int64_t tag)
{
	switch (tag) {
	case DT_STRTAB: return D_STRTAB;
	case DT_STRSZ: return D_STRSZ;
	case DT_SYMTAB: return D_SYMTAB;
	case DT_SYMENT: return D_SYMENT;
	case DT_HASH: return D_HASH;
	case DT_GNU_HASH: return D_GNU_HASH;
	case DT_RELA: return D_RELA;
	case DT_RELASZ: return D_RELASZ;
	case DT_RELAENT: return D_RELAENT;
	case DT_REL: return D_REL;
	case DT_RELSZ: return D_RELSZ;
	case DT_JMPREL: return D_JMPREL;
	case DT_PLTRELSZ: return D_PLTRELSZ;
	case DT_INIT: return D_INIT;
	case DT_FINI: return D_FINI;
	case DT_INIT_ARRAY: return D_INIT_ARRAY;
	case DT_INIT_ARRAYSZ: return D_INIT_ARRAYSZ;
	case DT_FINI_ARRAY: return D_FINI_ARRAY;
	case DT_FINI_ARRAYSZ: return D_FINI_ARRAYSZ;
	case DT_VERSYM: return D_VERSYM;
	case DT_VERDEF: return D_VERDEF;
	case DT_VERNEED: return D_VERNEED;
	}
	return -1;
}

/* A table the dynamic section names: [addr, addr + len) must be read from the file. */
static int table_inside(const struct loads *l, const uint64_t *v, const bool *set, int at, int size_slot,
			uint64_t min_len, const char *name, char *why, size_t whylen)
{
	if (!set[at])
		return 0;
	uint64_t len = size_slot >= 0 && set[size_slot] ? v[size_slot] : min_len;
	if (!file_backed(l, v[at], len, NULL))
		return refuse(why, whylen, "dynamic section: %s at %#llx..%#llx, expected it inside the file part of a "
			      "PT_LOAD segment", name, (unsigned long long)v[at], (unsigned long long)(v[at] + len));
	return 0;
}

static int check_dynamic(const struct source *s, const struct loads *l, const ElfW(Phdr) *dyn, char *why,
			 size_t whylen)
{
	uint64_t off = 0, v[D_COUNT] = {0};
	bool set[D_COUNT] = {false}, ended = false;
	/* Strings the loader looks up by offset: DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH. */
	uint64_t str_max = 0;
	int64_t str_tag = 0;
	file_backed(l, dyn->p_vaddr, dyn->p_filesz, &off); /* checked by check_segments */
	uint64_t n = dyn->p_filesz / sizeof(ElfW(Dyn));
	ElfW(Dyn) chunk[32];
	for (uint64_t i = 0; i < n && !ended;) {
		uint64_t k = n - i < 32 ? n - i : 32;
		int rc = read_at(s, off + i * sizeof chunk[0], chunk, (size_t)k * sizeof chunk[0], why, whylen);
		if (rc)
			return rc;
		for (uint64_t j = 0; j < k; j++, i++) {
			int64_t tag = chunk[j].d_tag;
			uint64_t val = chunk[j].d_un.d_val;
			if (tag == DT_NULL) {
				ended = true;
				break;
			}
			if (tag == DT_NEEDED || tag == DT_SONAME || tag == DT_RPATH || tag == DT_RUNPATH) {
				if (val >= str_max) {
					str_max = val;
					str_tag = tag;
				}
				continue;
			}
			int slot = dyn_slot(tag);
			if (slot >= 0) {
				v[slot] = val;
				set[slot] = true;
			}
		}
	}
	if (!ended)
		return refuse(why, whylen, "dynamic section of %llu entries without a DT_NULL end, expected one",
			      (unsigned long long)n);
	if (!set[D_STRTAB] || !set[D_STRSZ] || v[D_STRSZ] == 0)
		return refuse(why, whylen, "dynamic section: no string table (DT_STRTAB, DT_STRSZ), expected one");
	if (!set[D_SYMTAB])
		return refuse(why, whylen, "dynamic section: no symbol table (DT_SYMTAB), expected one");
	if (!set[D_HASH] && !set[D_GNU_HASH])
		return refuse(why, whylen, "dynamic section: no hash table (DT_GNU_HASH or DT_HASH), expected one");
	if (set[D_SYMENT] && v[D_SYMENT] != sizeof(ElfW(Sym)))
		return refuse(why, whylen, "dynamic section: symbol entry size %llu, expected %zu",
			      (unsigned long long)v[D_SYMENT], sizeof(ElfW(Sym)));
	if (set[D_RELAENT] && v[D_RELAENT] != sizeof(ElfW(Rela)))
		return refuse(why, whylen, "dynamic section: relocation entry size %llu, expected %zu",
			      (unsigned long long)v[D_RELAENT], sizeof(ElfW(Rela)));
	static const struct {
		int at, size;
		uint64_t min;
		const char *name;
	} tables[] = {
		{D_STRTAB, D_STRSZ, 1, "the string table (DT_STRTAB)"},
		{D_SYMTAB, -1, sizeof(ElfW(Sym)), "the symbol table (DT_SYMTAB)"},
		{D_HASH, -1, 8, "the hash table (DT_HASH)"},
		{D_GNU_HASH, -1, 16, "the hash table (DT_GNU_HASH)"},
		{D_RELA, D_RELASZ, 0, "the relocations (DT_RELA)"},
		{D_REL, D_RELSZ, 0, "the relocations (DT_REL)"},
		{D_JMPREL, D_PLTRELSZ, 0, "the PLT relocations (DT_JMPREL)"},
		{D_INIT, -1, 1, "the init function (DT_INIT)"},
		{D_FINI, -1, 1, "the fini function (DT_FINI)"},
		{D_INIT_ARRAY, D_INIT_ARRAYSZ, 0, "the init array (DT_INIT_ARRAY)"},
		{D_FINI_ARRAY, D_FINI_ARRAYSZ, 0, "the fini array (DT_FINI_ARRAY)"},
		{D_VERSYM, -1, 2, "the symbol versions (DT_VERSYM)"},
		{D_VERDEF, -1, sizeof(ElfW(Verdef)), "the version definitions (DT_VERDEF)"},
		{D_VERNEED, -1, sizeof(ElfW(Verneed)), "the version needs (DT_VERNEED)"},
	};
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		int rc = table_inside(l, v, set, tables[i].at, tables[i].size, tables[i].min, tables[i].name, why, whylen);
		if (rc)
			return rc;
	}
	if (str_tag && str_max >= v[D_STRSZ])
		return refuse(why, whylen, "dynamic section: %s string at offset %llu, expected it inside the string "
			      "table (%llu bytes)", str_tag == DT_NEEDED ? "DT_NEEDED" : str_tag == DT_SONAME ? "DT_SONAME"
			      : "DT_RPATH/DT_RUNPATH", (unsigned long long)str_max, (unsigned long long)v[D_STRSZ]);
	uint64_t last = 0;
	file_backed(l, v[D_STRTAB], v[D_STRSZ], &last);
	unsigned char nul;
	int rc = read_at(s, last + v[D_STRSZ] - 1, &nul, 1, why, whylen);
	if (rc)
		return rc;
	if (nul != 0)
		return refuse(why, whylen, "dynamic section: the string table does not end with a NUL byte");
	return 0;
}

static int check(const struct source *s, char *why, size_t whylen)
{
	static const unsigned char magic[SELFMAG] = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3};
	if (whylen)
		why[0] = '\0';
	if (s->size == 0)
		return refuse(why, whylen, "empty file (0 bytes), expected an ELF shared object");
	ElfW(Ehdr) h;
	memset(&h, 0, sizeof h);
	size_t head = s->size < sizeof h ? (size_t)s->size : sizeof h;
	int rc = read_at(s, 0, &h, head, why, whylen);
	if (rc)
		return rc;
	if (memcmp(h.e_ident, magic, head < SELFMAG ? head : SELFMAG) != 0) {
		const unsigned char *b = h.e_ident;
		if (head < SELFMAG)
			return refuse(why, whylen, "not an ELF file (%zu bytes), expected an ELF shared object", head);
		return refuse(why, whylen, "not an ELF file (starts with %02x %02x %02x %02x), expected an ELF "
			      "shared object (7f 45 4c 46)", b[0], b[1], b[2], b[3]);
	}
	if (head < EI_NIDENT)
		return refuse(why, whylen, "ELF file of %zu bytes, expected at least %zu (the ELF header): truncated",
			      head, sizeof h);
	if ((rc = check_header(&h, s->size, why, whylen)) != 0)
		return rc;
	if ((rc = check_extents(s, &h, why, whylen)) != 0)
		return rc;
	struct loads loads;
	ElfW(Phdr) dyn;
	memset(&dyn, 0, sizeof dyn);
	if ((rc = check_segments(s, &h, &loads, &dyn, why, whylen)) != 0)
		return rc;
	return check_dynamic(s, &loads, &dyn, why, whylen);
}

int hak__elf_check_buffer(const void *buf, size_t size, char *why, size_t whylen)
{
	struct source s = {.fd = -1, .buf = buf ? buf : (const unsigned char *)"", .size = buf ? size : 0};
	return check(&s, why, whylen);
}

int hak__elf_check_fd(int fd, char *why, size_t whylen)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(why, whylen, "cannot fstat: %s", strerrordesc_np(e) ? strerrordesc_np(e) : "?");
		return EIO;
	}
	struct source s = {.fd = fd, .buf = NULL, .size = st.st_size > 0 ? (uint64_t)st.st_size : 0};
	return check(&s, why, whylen);
}
