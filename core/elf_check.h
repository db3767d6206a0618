/* elf_check.h: the check a plugin file passes before dlopen maps it. The dynamic loader maps a
 * shared object's segments as the program headers say; a file cut short (a partial install, a
 * full disk) is mapped past its end, and the first touch of a missing page kills the host with
 * SIGBUS before main. So the loader first reads the file's headers through the descriptor it
 * already holds and refuses, with one reason, anything dlopen could not map safely:
 *
 *   - the ELF header: magic, class and byte order of this process, version 1, OS ABI System V or
 *     GNU, type ET_DYN, this process's machine, the native program header entry size;
 *   - the program header table, every PT_LOAD segment's file extent (p_offset + p_filesz) and the
 *     section header table (when there is one) inside the file: a truncated file is named as such,
 *     with the size it should have at least;
 *   - each PT_LOAD: p_filesz <= p_memsz, an alignment that is a power of two of at least the page
 *     size with address and offset congruent modulo it, no wrap-around, ascending and disjoint;
 *     at least one PT_LOAD;
 *   - exactly one PT_DYNAMIC; it, PT_PHDR, PT_TLS, PT_NOTE, PT_GNU_PROPERTY and PT_GNU_EH_FRAME
 *     (which ld.so or the unwinder read in place) inside the file-backed part of a PT_LOAD;
 *   - the dynamic section: a DT_NULL end inside it; a string table (ending in NUL), a symbol table
 *     and a hash table; every table address it names (relocations, init/fini arrays, versions)
 *     inside a PT_LOAD with its size; DT_NEEDED/DT_SONAME/DT_RPATH/DT_RUNPATH inside the strings.
 *
 * What it cannot see: damage inside a segment's bytes (a flipped bit in code or in a relocation)
 * that keeps every header consistent. A checksum would be needed for that.
 *
 * Both functions return 0, or ENOEXEC with "<found>, expected <expected>" in `why` (EIO when the
 * descriptor cannot be read, ENOEXEC as well when the file shrinks while it is read). They never
 * map the file and never allocate. */
#ifndef HAK_ELF_CHECK_H
#define HAK_ELF_CHECK_H

#include <stddef.h>

#include "log.h"

#define HAK_ELF_PHNUM_MAX 1024 /* more program headers than any real shared object has */
#define HAK_ELF_LOADS_MAX 64   /* PT_LOAD segments remembered for the address checks */

/* The file open at fd (read with pread, from offset 0 to its fstat size). */
HAK_HIDDEN int hak__elf_check_fd(int fd, char *why, size_t whylen);

/* The same check on `size` bytes in memory, for the unit tests and the fuzzer. Pure. */
HAK_HIDDEN int hak__elf_check_buffer(const void *buf, size_t size, char *why, size_t whylen);

#endif
