/* log.h: the one way hakmem talks to the user: single `hakmem: ` lines on stderr,
 * written with write(2) so they work inside malloc, during start-up and after fork. */
#ifndef HAK_LOG_H
#define HAK_LOG_H

#include <stdarg.h>

#define HAK_HIDDEN __attribute__((visibility("hidden")))

/* Formats into a stack buffer and writes "hakmem: <text>\n" to fd 2. Preserves errno. */
HAK_HIDDEN void hak__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HAK_HIDDEN void hak__vlog(const char *fmt, va_list ap);
/* Same, then abort(): heap corruption or a broken invariant. */
HAK_HIDDEN _Noreturn void hak__fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Tests may redirect the lines (cmocka checks what was said); NULL restores stderr. */
typedef void (*hak_log_sink)(const char *line);
HAK_HIDDEN void hak__log_set_sink(hak_log_sink sink);

#endif
