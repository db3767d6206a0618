/* alloc_fast_x86_64.h: layer 8, the two fast paths of alloc_fast.h hand-scheduled for x86-64:
 * the exported malloc and free (and their __libc_ aliases) when HAK_FAST_ASM (alloc_fast.h) is
 * on. Included once, by api.c, in place of the C definitions. They do exactly what
 * hak__malloc_fast and hak__free_fast do, test for test (keep the three in step: the C ones
 * serve calloc, cfree, free_sized, the unit tests, debug builds and other targets); what they
 * save is what the compiler cannot: registers chosen so the popped block is already the
 * return value, and the thread's caches (static TLS, hak__tcs) addressed as
 * %fs:(hak__tcs's offset + the class's tc_off) in one operand, where C computes the cache's
 * address first.
 * Every field offset below is checked against the structs, so a layout change that forgets
 * this file does not build. */
#ifndef HAK_ALLOC_FAST_X86_64_H
#define HAK_ALLOC_FAST_X86_64_H

#include "alloc_fast.h"

#define HAK__S(x) #x
#define HAK__XS(x) HAK__S(x)

#define HAK_AS_SLAB_OWNER 0
#define HAK_AS_SLAB_START 8
#define HAK_AS_SLAB_DIV_INV 16
#define HAK_AS_SLAB_CARVED 24
#define HAK_AS_SLAB_TLS_OFF 32
#define HAK_AS_SLAB_DIV_SHIFT 36
#define HAK_AS_TC_HEAD 0
#define HAK_AS_TC_ACCEPT 8
#define HAK_AS_TC_ROOM 16
#define HAK_AS_TC_FREES 24
_Static_assert(offsetof(struct hak_slab, xowner) == HAK_AS_SLAB_OWNER && sizeof(uintptr_t) == 8, "slab");
_Static_assert(offsetof(struct hak_slab, start) == HAK_AS_SLAB_START, "slab start");
_Static_assert(offsetof(struct hak_slab, div_inv) == HAK_AS_SLAB_DIV_INV, "slab div_inv");
_Static_assert(offsetof(struct hak_slab, xcarved) == HAK_AS_SLAB_CARVED && sizeof(uint64_t) == 8, "slab xcarved");
_Static_assert(offsetof(struct hak_slab, div_shift) == HAK_AS_SLAB_DIV_SHIFT, "slab div_shift");
_Static_assert(sizeof(((struct hak_slab *)0)->div_shift) == 1, "slab div_shift is read with movzbl");
_Static_assert(offsetof(struct hak_slab, tls_off) == HAK_AS_SLAB_TLS_OFF, "slab tls_off");
_Static_assert(sizeof(((struct hak_slab *)0)->tls_off) == 4 && HAK_TLS_FROM_TP, "slab tls_off is read with movslq, from the thread pointer");
_Static_assert(offsetof(struct hak_tcache, head) == HAK_AS_TC_HEAD, "cache head");
_Static_assert(offsetof(struct hak_tcache, accept) == HAK_AS_TC_ACCEPT, "cache accept");
_Static_assert(offsetof(struct hak_tcache, room) == HAK_AS_TC_ROOM, "cache room");
_Static_assert(sizeof(((struct hak_tcache *)0)->room) == 4, "cache room is counted with subl/addl");
_Static_assert(offsetof(struct hak_tcache, frees) == HAK_AS_TC_FREES, "cache frees");
_Static_assert(sizeof(hak__tc_off_of_small[0]) == 2, "malloc's table is read with movzwl");
_Static_assert(HAK_UNIT_SHIFT == 16 && HAK_FAST_MAX == 1024, "the constants below");
_Static_assert(HAK_FLAT_ENTRIES_AT == 4096 && sizeof(hak__flat_mask) == 8, "the flat map's layout");

/* malloc: the C version's tests in the same order. 12 instructions and ret.
 *   rdi n; rax the table, then the block; rdx hak__tcs's offset from the thread pointer; ecx
 *   the class's tc_off (its cache is %fs:(rdx + rcx)); rsi the next block */
__asm__(".text\n"
	".globl malloc\n"
	".type malloc, @function\n"
	".p2align 4\n"
	"malloc:\n"
	".cfi_startproc\n"
	"	cmpq $1024, %rdi\n"
	"	ja 1f\n"
	"	leaq hak__tc_off_of_small(%rip), %rax\n"
	"	movq hak__tcs@gottpoff(%rip), %rdx\n"
	"	movzwl (%rax,%rdi,2), %ecx\n"
	"	movq %fs:" HAK__XS(HAK_AS_TC_HEAD) "(%rdx,%rcx), %rax\n"
	"	testq %rax, %rax\n"
	"	je 1f\n"
	"	movq (%rax), %rsi\n"                    /* the next block */
	"	addl $1, %fs:" HAK__XS(HAK_AS_TC_ROOM) "(%rdx,%rcx)\n"
	"	movq %rsi, %fs:" HAK__XS(HAK_AS_TC_HEAD) "(%rdx,%rcx)\n"
	"	movq $0, 8(%rax)\n"                     /* the free mark goes: the block is out */
	"	ret\n"
	"1:	jmp hak__malloc_slow\n"
	".cfi_endproc\n"
	".size malloc, .-malloc\n"
	".globl __libc_malloc\n"
	".type __libc_malloc, @function\n"
	".set __libc_malloc, malloc\n");

/* free: the C version's tests in the same order: owner, block start, free mark, room. 27
 * instructions and ret. The cache is %fs:(the slab's tls_off): hak__tcs's offset from the thread
 * pointer plus the class's tc_off, the same in every thread, copied into the slab when it was
 * made; a slot never used (and the flat map's sentinel) has 0, which reads the thread's TCB
 * header as `accept` (its dtv pointer: never 0, the owner such a slot has) and so fails the
 * owner test, and its carved count of 0 fails the block-start test anyway.
 *   rdi p; rax M, then the slab; rdx the index, the owner, then the mark; r8 the cache's offset
 *   from the thread pointer; rsi the quotient; ecx the shift; r10 the old head */
__asm__(".text\n"
	".globl free\n"
	".type free, @function\n"
	".p2align 4\n"
	"free:\n"
	".cfi_startproc\n"
	"	movq %rdi, %rdx\n"
	"	shrq $16, %rdx\n"
	"	andq hak__flat_mask(%rip), %rdx\n"     /* the mask before M (addrmap.h) */
	"	movq hak__flat(%rip), %rax\n"
	"	addq 4096(%rax,%rdx,8), %rax\n"         /* the slab: M + entry, never NULL */
	"	movslq " HAK__XS(HAK_AS_SLAB_TLS_OFF) "(%rax), %r8\n"
	"	movq " HAK__XS(HAK_AS_SLAB_OWNER) "(%rax), %rdx\n"
	"	cmpq %fs:" HAK__XS(HAK_AS_TC_ACCEPT) "(%r8), %rdx\n"
	"	jne 9f\n"
	"	movq %rdi, %rsi\n"
	"	subq " HAK__XS(HAK_AS_SLAB_START) "(%rax), %rsi\n"
	"	movzbl " HAK__XS(HAK_AS_SLAB_DIV_SHIFT) "(%rax), %ecx\n"
	"	imulq " HAK__XS(HAK_AS_SLAB_DIV_INV) "(%rax), %rsi\n"
	"	movq hak__free_key(%rip), %rdx\n"
	"	rorq %cl, %rsi\n"
	"	xorq %rdi, %rdx\n"                      /* the free mark */
	"	cmpq " HAK__XS(HAK_AS_SLAB_CARVED) "(%rax), %rsi\n"
	"	jae 9f\n"                               /* not a block start, or never carved */
	"	cmpq 8(%rdi), %rdx\n"
	"	je 9f\n"                                /* marked free: the slow path names it */
	"	subl $1, %fs:" HAK__XS(HAK_AS_TC_ROOM) "(%r8)\n"
	"	jb 9f\n"                                /* full (hak__room_take) */
	"	movq %fs:" HAK__XS(HAK_AS_TC_HEAD) "(%r8), %r10\n"
	"	movq %rdx, 8(%rdi)\n"
	"	movq %r10, (%rdi)\n"
	"	movq %rdi, %fs:" HAK__XS(HAK_AS_TC_HEAD) "(%r8)\n"
	"	addq $1, %fs:" HAK__XS(HAK_AS_TC_FREES) "(%r8)\n"
	"	ret\n"
	"9:	jmp hak__free_slow\n"
	".cfi_endproc\n"
	".size free, .-free\n"
	".globl __libc_free\n"
	".type __libc_free, @function\n"
	".set __libc_free, free\n");

#endif
