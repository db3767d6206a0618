/* log.c: one-line diagnostics on stderr without stdio (safe inside malloc and after fork). */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static hak_log_sink log_sink;

void hak__log_set_sink(hak_log_sink sink)
{
	log_sink = sink;
}

void hak__vlog(const char *fmt, va_list ap)
{
	int saved = errno;
	char line[512];
	size_t n = (size_t)snprintf(line, sizeof line, "hakmem: ");
	int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	if (k < 0)
		k = 0;
	n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
	if (log_sink) {
		line[n] = '\0';
		log_sink(line);
	} else {
		line[n++] = '\n';
		for (size_t off = 0; off < n;) {
			ssize_t w = write(2, line + off, n - off);
			if (w <= 0 && errno != EINTR)
				break;
			if (w > 0)
				off += (size_t)w;
		}
	}
	errno = saved;
}

void hak__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hak__vlog(fmt, ap);
	va_end(ap);
}

void hak__fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hak__vlog(fmt, ap);
	va_end(ap);
	abort();
}
