/* config.h: the hakmem INI file. Owns the [core] settings table (declared once, below, and
 * expanded into the struct, the defaults, the parser and the documentation), the per-kind policy
 * choices with the keys passed through to each plugin's init, and the safe opening of files.
 *
 * File format (parsed with inih):
 *   [core]        the settings of HAK_CORE_SETTINGS below
 *   [trim] [superslab] [ownership]
 *                 `policy = <bare name>` picks the plugin; every other key is collected, with its
 *                 line, into a struct hak_settings for that plugin's init, which validates it.
 * Every mistake is one stderr line `hakmem: <file>:<line>: <what>; <fallback>` and a safe default:
 * a bad line never discards the good ones around it. Lines are at most 198 bytes (inih's line
 * buffer as Debian builds it is 200); longer ones are reported and ignored, never split.
 */
#ifndef HAK_CONFIG_H
#define HAK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hakmem_policy.h"
#include "kinds.h"
#include "log.h"

/* The installed plugin folder; the Makefile passes the real one. */
#ifndef HAK_PLUGIN_DIR
#define HAK_PLUGIN_DIR "/usr/local/lib/hakmem"
#endif

#define HAK_CONFIG_SYSTEM_PATH "/etc/hakmem.ini" /* used when HAKMEM_CONF is not set */
#define HAK_CONFIG_PATH_MAX    4096              /* file names and policy_dir, with the NUL */
#define HAK_CONFIG_MAX_BYTES   (256 * 1024)      /* larger files are refused, not truncated */
#define HAK_CONFIG_MAX_KEYS    64                /* plugin keys kept per section */
#define HAK_CONFIG_MAX_REPORTS 20                /* diagnostic lines per file, then one summary */
#define HAK_CONFIG_NO_FILE     "(defaults)"      /* the label when no file was read */

enum hak_stats_mode {
	HAK_STATS_OFF = 0,   /* print nothing at exit */
	HAK_STATS_TABLE = 1, /* a human-readable table on stderr */
	HAK_STATS_JSON = 2,  /* one JSON object on stderr */
};

/* The [core] settings, declared once. Columns:
 *   X(key, type, default, min, max, help)
 * type is one of PATH (a folder; relative values resolve against the INI file's folder),
 * FILE (a file name, resolved the same way; empty: none), UINT (decimal integer in [min, max]),
 * BOOL (on|off, yes|no, true|false, 1|0), STATS (off|table|json).
 * min and max only mean something for UINT. */
#define HAK_CORE_SETTINGS(X)                                                                        \
	X(policy_dir, PATH, HAK_PLUGIN_DIR, 0, 0,                                                   \
	  "Folder holding the policy plugins (`<kind>_<name>.so`). A relative path resolves "        \
	  "against the folder of the INI file itself.")                                             \
	X(stats, STATS, HAK_STATS_OFF, 0, 0,                                                        \
	  "Counters printed on stderr at exit: `off`, `table` or `json`. The environment variable "  \
	  "`HAKMEM_STATS` (`0`/`off`, `1`/`table`, `json`) overrides it.")                           \
	X(map_budget, UINT, 0, 0, INT32_MAX,                                                        \
	  "Most memory mappings hakmem may hold at once; past it an allocation fails with ENOMEM "   \
	  "and one diagnostic line. `0` = automatic: a share of `vm.max_map_count`.")                \
	X(verbose, BOOL, false, 0, 0,                                                               \
	  "Log one line per policy at start-up naming what was loaded and from which file.")        \
	X(trace, FILE, "", 0, 0,                                                                    \
	  "Record every allocation call of the program into this file, for `hakmem replay` (see "    \
	  "hakmem(7)). Empty: no recording. The environment variable `HAKMEM_TRACE` overrides it; "  \
	  "`hakmem record -o FILE` sets it.")

/* Storage of each type. */
#define HAK__CFG_FIELD_PATH(name)  char name[HAK_CONFIG_PATH_MAX]
#define HAK__CFG_FIELD_FILE(name)  char name[HAK_CONFIG_PATH_MAX]
#define HAK__CFG_FIELD_UINT(name)  uint64_t name
#define HAK__CFG_FIELD_BOOL(name)  bool name
#define HAK__CFG_FIELD_STATS(name) enum hak_stats_mode name

struct hak_core_settings {
#define HAK__X(key, type, def, lo, hi, help) HAK__CFG_FIELD_##type(key);
	HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
};

/* What one [trim] / [superslab] / [ownership] section asked for. */
struct hak_policy_choice {
	char *name;                /* `policy =` value, owned; NULL or "" = the built-in default */
	int line;                  /* line of `policy =`, 0 when not given */
	int section_line;          /* line of the first [kind] header, 0 when the section is absent */
	struct hak_setting *items; /* the other keys in file order; owned, strings included */
	size_t count;              /* items in use */
	size_t capacity;           /* items allocated */
};

struct hak_config {
	char file[HAK_CONFIG_PATH_MAX]; /* the INI file as named, or HAK_CONFIG_NO_FILE */
	char dir[HAK_CONFIG_PATH_MAX];  /* its folder ("." for a bare file name) */
	struct hak_core_settings core;  /* [core] */
	struct hak_policy_choice policy[HAK_KIND_COUNT]; /* indexed by HAK_KIND_INDEX_* */
	unsigned diagnostics;           /* lines reported while reading; 0 = the file was clean */
};

/* The settings of one kind as a plugin's init takes them. Built on demand rather than stored, so
 * a struct hak_config stays free of pointers into itself (it may be copied). Valid until
 * hak__config_free. */
static inline struct hak_settings hak__config_settings(const struct hak_config *cfg, int kind_index)
{
	const struct hak_policy_choice *c = &cfg->policy[kind_index];
	struct hak_settings s = {cfg->file, c->items, c->count};
	return s;
}

/* Built-in values everywhere, no file. Owns nothing yet; hak__config_free is still fine. */
HAK_HIDDEN void hak__config_defaults(struct hak_config *cfg);
/* Releases what parsing allocated and leaves cfg at its defaults. Plugins must have copied what
 * they keep from their settings before this (their init has returned). */
HAK_HIDDEN void hak__config_free(struct hak_config *cfg);

/* Reads `path` (NULL: built-in defaults, returns 0). Overwrites cfg (free it first if it was
 * used). Returns 0 for a clean file; EINVAL when the content had mistakes (reported; cfg keeps
 * every good line); an errno value when the file could not be used at all (reported; cfg holds the
 * defaults). cfg is usable in every case. Uses open/read, no stdio; may call malloc. */
HAK_HIDDEN int hak__config_load(const char *path, struct hak_config *cfg);

/* Parses INI text already in memory. file_label names it in messages and its folder is where
 * relative paths resolve. Pure apart from the diagnostic lines: for tests and fuzzers.
 * Same return values and overwrite rule as hak__config_load. */
HAK_HIDDEN int hak__config_parse_string(const char *text, const char *file_label,
					struct hak_config *cfg);
/* Same on a buffer of `len` bytes that need not be NUL-terminated; a NUL byte inside makes the
 * whole buffer refused (binary data is not a configuration). */
HAK_HIDDEN int hak__config_parse_buffer(const char *buf, size_t len, const char *file_label,
					struct hak_config *cfg);

/* Which file to read: HAKMEM_CONF (read with secure_getenv; set but empty = no file at all);
 * without it HAK_CONFIG_SYSTEM_PATH when something exists at that name; else NULL = built-in
 * defaults. In secure-execution mode every HAKMEM_* variable is ignored. */
HAK_HIDDEN const char *hak__config_path_from_env(void);
/* The decision itself, for tests: env_value is HAKMEM_CONF (NULL when unset). */
HAK_HIDDEN const char *hak__config_choose_path(const char *env_value, bool secure,
					       const char *system_path);
/* Applies HAKMEM_STATS over cfg->core.stats and HAKMEM_TRACE over cfg->core.trace (both ignored
 * in secure mode); a bad value is one line. */
HAK_HIDDEN void hak__config_apply_env(struct hak_config *cfg);

/* Nonzero when the process runs in secure-execution mode (setuid, setgid, capabilities):
 * getauxval(AT_SECURE). Unit tests may force it with hak__test_secure_mode. */
HAK_HIDDEN bool hak__secure_mode(void);
/* A HAKMEM_* variable, or NULL in secure mode or when unset. */
HAK_HIDDEN const char *hak__getenv(const char *name);
#ifdef HAK_UNIT_TEST
extern int hak__test_secure_mode; /* -1: ask the kernel (default); 0 or 1: forced */
#endif

/* Opens a file hakmem is about to trust (a configuration or a plugin): first every folder from /
 * down to it is checked by hak__trusted_parent_open (owned by root or the real user, not writable
 * by group or others: trusted_dir.h), then the file is opened relative to the last one: O_RDONLY,
 * O_NOFOLLOW, O_CLOEXEC, O_NONBLOCK (a FIFO must not hang start-up), then fstat on the
 * descriptor. Refuses anything but a regular file, a file writable by group or others, or one
 * owned by someone other than root or the real user (only root in secure mode). Returns the descriptor, or -1 with
 * *err set to an errno value and `why` holding the reason ("is group-writable (mode 0664)",
 * "cannot open: No such file or directory"). */
HAK_HIDDEN int hak__open_trusted(const char *path, int *err, char *why, size_t whylen);

/* Copies untrusted text for a log line: control bytes become '?', anything past `size`
 * becomes "...". keep_tail keeps the end instead of the start (for paths). Returns dst. */
HAK_HIDDEN char *hak__log_quote(char *dst, size_t size, const char *src, bool keep_tail);

/* Markdown reference of every setting, generated from HAK_CORE_SETTINGS (for the README and
 * `hakmem check`). Uses stdio: never call it inside the allocator. */
HAK_HIDDEN void hak__config_doc(FILE *out);

#endif
