/* log.h: the one way hakmem talks to the user: single `hakmem: ` lines on stderr,
 * written with write(2) so they work inside malloc, during start-up and after fork. */
#ifndef HAK_LOG_H
#define HAK_LOG_H

#include <stdarg.h>

#define HAK_HIDDEN __attribute__((visibility("hidden")))
/* A function of an otherwise cold file (configuration, recording) that every program runs once,
 * at start-up or at exit. The linker keeps .text.startup at the front of the library's code with
 * the hot paths, and core/layout.ld moves the rest of those files behind them, so a small program
 * faults in one 64 KB window of hakmem's code instead of all of it. */
#define HAK_STARTUP __attribute__((section(".text.startup")))
/* A large zero-filled array that start-up does not write. core/layout.ld puts these behind the
 * rest of .bss, so the small variables every program writes at start-up share a few pages
 * instead of taking one page each between the arrays. */
#define HAK_BIG_BSS __attribute__((section(".bss.hak_big")))

/* Formats into a stack buffer and writes "hakmem: <text>\n" to fd 2. Preserves errno. */
HAK_HIDDEN void hak__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HAK_HIDDEN void hak__vlog(const char *fmt, va_list ap);
/* Same, then abort(): heap corruption or a broken invariant. */
HAK_HIDDEN _Noreturn void hak__fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Tests may redirect the lines (cmocka checks what was said); NULL restores stderr. */
typedef void (*hak_log_sink)(const char *line);
HAK_HIDDEN void hak__log_set_sink(hak_log_sink sink);

#endif
