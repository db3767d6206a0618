/* fuzz_elf: libFuzzer harness for the ELF check a plugin file passes before dlopen,
 * hak__elf_check_buffer (core/elf_check.c). The fuzz bytes are the whole file. They are copied
 * into a heap buffer of exactly their size, so AddressSanitizer sees any read past the end of
 * the file (the check promises to read nothing at or past it).
 * Contract checks on top of the sanitizers (core/elf_check.h): the result is 0 or ENOEXEC; a
 * refusal leaves a NUL-terminated one-line reason inside whylen; an acceptance means the file
 * really has this process's ELF identity and every PT_LOAD extent inside it. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf_check.h"

static void contract_broken(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_elf: contract broken: %s [%s]\n", what, why ? why : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *file = malloc(size ? size : 1);
	if (!file)
		abort();
	memcpy(file, data, size);
	/* The reason buffer's size comes from the input too: every length must stay NUL-terminated. */
	size_t whylen = size ? 1 + data[size - 1] % 300 : 200;
	char *why = malloc(whylen);
	if (!why)
		abort();
	memset(why, 'x', whylen);
	int rc = hak__elf_check_buffer(file, size, why, whylen);
	if (rc != 0 && rc != ENOEXEC)
		contract_broken("result neither 0 nor ENOEXEC", NULL);
	if (rc != 0 && (!memchr(why, '\0', whylen) || memchr(why, '\n', strnlen(why, whylen))))
		contract_broken("a refusal without a one-line NUL-terminated reason inside whylen", NULL);
	if (rc == 0) {
		const ElfW(Ehdr) *h = (const ElfW(Ehdr) *)file;
		if (size < sizeof *h || memcmp(h->e_ident, ELFMAG, SELFMAG) != 0 || h->e_type != ET_DYN ||
		    h->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
			contract_broken("accepted a file that is not a native ELF shared object", NULL);
		if (h->e_phoff > size || (uint64_t)h->e_phnum * sizeof(ElfW(Phdr)) > size - h->e_phoff)
			contract_broken("accepted a program header table past the end", NULL);
		int loads = 0;
		for (unsigned i = 0; i < h->e_phnum; i++) {
			ElfW(Phdr) p;
			memcpy(&p, file + h->e_phoff + i * sizeof p, sizeof p);
			if (p.p_type != PT_LOAD)
				continue;
			loads++;
			if (p.p_offset > size || p.p_filesz > size - p.p_offset || p.p_filesz > p.p_memsz)
				contract_broken("accepted a PT_LOAD extent past the end of the file", NULL);
		}
		if (!loads)
			contract_broken("accepted a file without PT_LOAD", NULL);
	}
	free(why);
	free(file);
	return 0;
}
