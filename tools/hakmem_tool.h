/* hakmem_tool.h: what the parts of the `hakmem` command share: the paths compiled in by
 * tools/install.mk, the exit codes, where the executable sits, and the subcommands.
 * The command runs on glibc's malloc; it links the core's parser and loader, never api.c. */
#ifndef HAKMEM_TOOL_H
#define HAKMEM_TOOL_H

#include <stdbool.h>
#include <stddef.h>

/* Set by tools/install.mk; these defaults are those of PREFIX=/usr/local. */
#ifndef HAK_LIBDIR
#define HAK_LIBDIR "/usr/local/lib" /* where libhakmem is installed */
#endif
#ifndef HAK_LIB_FROM_BIN
#define HAK_LIB_FROM_BIN "../lib" /* HAK_LIBDIR as seen from bin/, or absolute */
#endif
#ifndef HAK_PLUGIN_DIR_FROM_BIN
#define HAK_PLUGIN_DIR_FROM_BIN "../lib/hakmem" /* HAK_PLUGIN_DIR as seen from bin/, or absolute */
#endif
#ifndef HAK_SONAME
#define HAK_SONAME "libhakmem.so.0"
#endif
#ifndef HAK_REPLAYER_FROM_BIN
#define HAK_REPLAYER_FROM_BIN "../libexec/hakmem/hakmem-replay" /* `hakmem replay`'s replayer */
#endif
#ifndef HAK_DRIVER_FROM_BIN
#define HAK_DRIVER_FROM_BIN "../share/hakmem/hakmem_replay.py" /* and its driver */
#endif
#ifndef HAK_VERSION
#define HAK_VERSION "0.1.0"
#endif

enum {
	HAK_TOOL_OK = 0,
	HAK_TOOL_FAILED = 1, /* check: the file had mistakes; policies: a plugin was refused */
	HAK_TOOL_USAGE = 2,  /* bad command line, or nothing could be read at all */
};

/* The folder of /proc/self/exe, without a trailing slash. false when unknown. */
bool hak__tool_exe_dir(char *buf, size_t size);

/* `<exe dir>/<rel>` when rel is relative, rel itself when absolute; true when the result is an
 * existing folder (want_dir) or readable file. */
bool hak__tool_near_exe(const char *rel, bool want_dir, char *buf, size_t size);

/* hakmem policies [--keys] [DIR]; config is -c FILE or NULL; keys: list each plugin's keys.
 * Returns HAK_TOOL_*. */
int hak__tool_policies(const char *dir, const char *config, bool keys);

/* hakmem check [FILE]; NULL checks the file the library would read. Returns HAK_TOOL_*. */
int hak__tool_check(const char *file);

#endif
