/* rel.h: shared helpers for the reliability programs (the C files in tests/reliability). They link libc
 * only and run under LD_PRELOAD=libhakmem.so in a child of tests/reliability/run.sh.
 * Success is exit 0 with a "<program>: ..." summary on stdout; a failure is one line on stderr
 * and exit 1. Nothing here allocates before the program asks it to. */
#ifndef HAK_REL_H
#define HAK_REL_H

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define REL_FAIL(...) rel_fail(__FILE__, __LINE__, __VA_ARGS__)
#define REL_CHECK(cond, ...) do { if (!(cond)) REL_FAIL(__VA_ARGS__); } while (0)

/* One line on stderr through write(2) (no stdio: callers may be in a child after fork, in a
 * signal handler or past exit()), then _exit(1). */
__attribute__((noreturn, format(printf, 3, 4), unused))
static void rel_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	int n = snprintf(msg, sizeof msg, "%s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof msg - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof msg - 2)
		n = (int)sizeof msg - 2;
	msg[n++] = '\n';
	ssize_t w = write(2, msg, (size_t)n);
	(void)w;
	_exit(1);
}

/* A pointer the compiler cannot see through: keeps -Wfree-nonheap-object and the optimiser from
 * judging the invalid calls these programs make on purpose. */
__attribute__((unused))
static void *rel_opaque(void *p)
{
	void *volatile v = p;
	return v;
}

/* True when hakmem is this process's allocator (it exports hak_stats_print). */
__attribute__((unused))
static int rel_is_hakmem(void)
{
	return dlsym(RTLD_DEFAULT, "hak_stats_print") != NULL;
}

/* Fills and checks a block with a pattern derived from its address and a seed. */
__attribute__((unused))
static void rel_fill(void *p, size_t n, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)((uintptr_t)p + i * 7 + seed);
}

__attribute__((unused))
static int rel_intact(const void *p, size_t n, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != (unsigned char)((uintptr_t)p + i * 7 + seed))
			return 0;
	return 1;
}

/* SIGALRM every `usec` microseconds into `handler` (restarting interrupted calls). */
static inline void rel_alarm_every(void (*handler)(int), long usec)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	REL_CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction failed");
	struct itimerval it = {{0, usec}, {0, usec}};
	REL_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer failed");
}

#endif
