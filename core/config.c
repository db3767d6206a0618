/* config.c: reads the hakmem INI file into struct hak_config. Owns the [core] settings table's
 * expansions (defaults, parser, documentation), the per-kind policy sections, the choice of the
 * file (HAKMEM_CONF, /etc/hakmem.ini, secure mode) and the safety checks on files hakmem trusts.
 *
 * inih does the key/value splitting. It reads lines through our own reader, which numbers them
 * (Debian's inih does not hand line numbers to the handler), strips leading blanks (an indented
 * line would otherwise be taken as the continuation of the previous value), refuses lines too long
 * for inih's buffer instead of letting inih split them, and handles [section] headers and syntax
 * errors itself so that every mistake is reported once, with its line.
 */
#include "config.h"
#include "trusted_dir.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(HAK_PLUGIN_DIR) <= HAK_CONFIG_PATH_MAX, "HAK_PLUGIN_DIR is too long");

/* ---- Small shared helpers ------------------------------------------------------------------ */

char *hak__log_quote(char *dst, size_t size, const char *src, bool keep_tail)
{
	if (size == 0)
		return dst;
	if (!src)
		src = "(null)";
	size_t len = strlen(src), room = size - 1, n = len, skip = 0;
	const char *dots = "";
	if (len > room) {
		dots = "...";
		n = room > 3 ? room - 3 : 0;
		if (keep_tail)
			skip = len - n;
	}
	char *out = dst;
	if (keep_tail && *dots)
		out += snprintf(out, size, "%s", dots);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[skip + i];
		*out++ = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (!keep_tail && *dots && room >= 3)
		out += snprintf(out, 4, "%s", dots);
	*out = '\0';
	return dst;
}

static const char *errno_text(int e)
{
	const char *s = strerrordesc_np(e); /* never allocates, unlike strerror for unknown values */
	return s ? s : "unknown error";
}

/* ---- Environment and secure mode ------------------------------------------------------------ */

#ifdef HAK_UNIT_TEST
HAK_HIDDEN int hak__test_secure_mode = -1;
#endif

HAK_STARTUP bool hak__secure_mode(void)
{
#ifdef HAK_UNIT_TEST
	if (hak__test_secure_mode >= 0)
		return hak__test_secure_mode != 0;
#endif
	return getauxval(AT_SECURE) != 0;
}

HAK_STARTUP const char *hak__getenv(const char *name)
{
	return hak__secure_mode() ? NULL : secure_getenv(name);
}

HAK_STARTUP const char *hak__config_choose_path(const char *env_value, bool secure, const char *system_path)
{
	if (!secure && env_value)
		return *env_value ? env_value : NULL; /* HAKMEM_CONF= (empty): no file at all */
	struct stat st;
	/* lstat: a dangling or unsafe file at that name is still named, so its refusal is reported. */
	if (system_path && lstat(system_path, &st) == 0)
		return system_path;
	return NULL;
}

HAK_STARTUP const char *hak__config_path_from_env(void)
{
	return hak__config_choose_path(hak__getenv("HAKMEM_CONF"), hak__secure_mode(),
				       HAK_CONFIG_SYSTEM_PATH);
}

/* ---- Files hakmem trusts -------------------------------------------------------------------- */

int hak__open_trusted(const char *path, int *err, char *why, size_t whylen)
{
	/* Every folder from / down to the file first (trusted_dir.h); the file relative to the last. */
	const char *base;
	int dirfd = hak__trusted_parent_open(path, &base, err, why, whylen);
	if (dirfd < 0)
		return -1;
	int fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (e == ELOOP && fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, whylen, "is a symbolic link (refused: the file itself is checked)");
		else
			snprintf(why, whylen, "cannot open: %s", errno_text(e));
		close(dirfd);
		*err = e;
		return -1;
	}
	close(dirfd);
	struct stat st;
	const char *what = NULL;
	int e = 0;
	bool secure = hak__secure_mode();
	uid_t me = getuid();
	if (fstat(fd, &st) != 0) {
		e = errno;
		snprintf(why, whylen, "cannot fstat: %s", errno_text(e));
	} else if (!S_ISREG(st.st_mode)) {
		what = S_ISDIR(st.st_mode)    ? "a directory"
		       : S_ISFIFO(st.st_mode) ? "a FIFO"
		       : S_ISSOCK(st.st_mode) ? "a socket"
					      : "a device";
		e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		snprintf(why, whylen, "is %s, expected a regular file", what);
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		e = EPERM;
		snprintf(why, whylen, "is %s-writable (mode %04o), expected no write bit for group and others",
			 (st.st_mode & S_IWOTH) ? "world" : "group", (unsigned)(st.st_mode & 07777));
	} else if (st.st_uid != 0 && (secure || st.st_uid != me)) {
		e = EPERM;
		if (secure)
			snprintf(why, whylen, "is owned by uid %u, expected root (secure-execution mode)",
				 (unsigned)st.st_uid);
		else
			snprintf(why, whylen, "is owned by uid %u, expected root or uid %u",
				 (unsigned)st.st_uid, (unsigned)me);
	}
	if (e) {
		close(fd);
		*err = e;
		return -1;
	}
	*err = 0;
	return fd;
}

/* ---- The [core] table, expanded --------------------------------------------------------------- */

enum core_type { CT_PATH, CT_FILE, CT_UINT, CT_BOOL, CT_STATS };

struct core_key {
	const char *key;
	enum core_type type;
	size_t offset; /* in struct hak_core_settings */
	uint64_t min, max;
	const char *help;
};

static const struct core_key core_keys[] = {
#define HAK__X(key_, type_, def_, lo_, hi_, help_)                                                     \
	{#key_, CT_##type_, offsetof(struct hak_core_settings, key_), (uint64_t)(lo_), (uint64_t)(hi_), \
	 help_},
	HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
};
#define CORE_KEY_COUNT (sizeof core_keys / sizeof core_keys[0])

static const char *const stats_names[] = {"off", "table", "json"};

static void copy_string(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

#define SET_DEFAULT_PATH(field, def)  copy_string(field, sizeof field, def)
#define SET_DEFAULT_FILE(field, def)  copy_string(field, sizeof field, def)
#define SET_DEFAULT_UINT(field, def)  (field) = (def)
#define SET_DEFAULT_BOOL(field, def)  (field) = (def)
#define SET_DEFAULT_STATS(field, def) (field) = (def)

static void core_defaults(struct hak_core_settings *c)
{
#define HAK__X(key_, type_, def_, lo_, hi_, help_) SET_DEFAULT_##type_(c->key_, def_);
	HAK_CORE_SETTINGS(HAK__X)
#undef HAK__X
}

/* The current value of a setting as text, for "using <fallback>" and the documentation. */
static const char *core_format(const struct hak_core_settings *c, const struct core_key *k, char *buf,
			       size_t size)
{
	const char *field = (const char *)c + k->offset;
	switch (k->type) {
	case CT_PATH:
	case CT_FILE:
		return hak__log_quote(buf, size, field, true);
	case CT_UINT:
		snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)(const void *)field);
		return buf;
	case CT_BOOL:
		return *(const bool *)(const void *)field ? "on" : "off";
	case CT_STATS: {
		unsigned v = (unsigned)*(const enum hak_stats_mode *)(const void *)field;
		return v < 3 ? stats_names[v] : "?";
	}
	}
	return "?";
}

/* Strict decimal: digits only, no sign, no suffix, no overflow. */
static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_bool(const char *s)
{
	static const char *const yes[] = {"on", "yes", "true", "1"}, *const no[] = {"off", "no", "false", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static int parse_stats(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcasecmp(s, stats_names[i]) == 0)
			return i;
	return -1;
}

/* Stores `value` into the setting; false with `why` on a bad value (the field is untouched). */
static bool core_parse(struct hak_core_settings *c, const struct core_key *k, const char *value,
		       const char *dir, char *why, size_t whylen)
{
	char *field = (char *)c + k->offset;
	switch (k->type) {
	case CT_PATH:
	case CT_FILE: {
		if (!*value && k->type == CT_FILE) {
			field[0] = '\0'; /* no file */
			return true;
		}
		if (!*value) {
			snprintf(why, whylen, "expected a folder, found an empty value");
			return false;
		}
		size_t need = value[0] == '/' ? strlen(value) : strlen(dir) + 1 + strlen(value);
		if (need >= HAK_CONFIG_PATH_MAX) {
			snprintf(why, whylen, "path longer than %d bytes", HAK_CONFIG_PATH_MAX - 1);
			return false;
		}
		if (value[0] == '/') {
			memcpy(field, value, need + 1);
		} else { /* dir + "/" + value; the lengths were checked above */
			size_t d = strlen(dir);
			memcpy(field, dir, d);
			field[d] = '/';
			memcpy(field + d + 1, value, strlen(value) + 1);
		}
		return true;
	}
	case CT_UINT: {
		uint64_t v;
		if (!parse_uint(value, k->min, k->max, &v)) {
			snprintf(why, whylen, "expected an integer in %llu..%llu", (unsigned long long)k->min,
				 (unsigned long long)k->max);
			return false;
		}
		*(uint64_t *)(void *)field = v;
		return true;
	}
	case CT_BOOL: {
		int v = parse_bool(value);
		if (v < 0) {
			snprintf(why, whylen, "expected on or off");
			return false;
		}
		*(bool *)(void *)field = v != 0;
		return true;
	}
	case CT_STATS: {
		int v = parse_stats(value);
		if (v < 0) {
			snprintf(why, whylen, "expected off, table or json");
			return false;
		}
		*(enum hak_stats_mode *)(void *)field = (enum hak_stats_mode)v;
		return true;
	}
	}
	return false;
}

/* ---- Parsing ---------------------------------------------------------------------------------- */

enum {
	SEC_NONE = -1,                /* before any header */
	SEC_CORE = HAK_KIND_COUNT,    /* [core]; 0..HAK_KIND_COUNT-1 are the policy kinds */
	SEC_IGNORED = HAK_KIND_COUNT + 1, /* an unknown or broken header: its keys are skipped */
};

struct parse {
	struct hak_config *cfg;
	const char *pos, *end; /* what the reader has not handed out yet */
	int line;              /* line just handed to inih */
	int section;           /* SEC_* or a kind index */
	int core_line[CORE_KEY_COUNT]; /* where each [core] key was set, for repeats */
	char label[160];       /* cfg->file, quoted for log lines */
};

static void set_label(struct parse *p, const char *label)
{
	hak__log_quote(p->label, sizeof p->label, label, true);
}

/* One diagnostic line "<file>:<line>: <what>" (or "<file>: <what>" for line 0), counted; after
 * HAK_CONFIG_MAX_REPORTS one summary and silence, so a binary or huge file cannot flood stderr. */
__attribute__((format(printf, 3, 4))) static void report(struct parse *p, int line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	unsigned n = ++p->cfg->diagnostics;
	if (n > HAK_CONFIG_MAX_REPORTS + 1)
		return;
	if (n == HAK_CONFIG_MAX_REPORTS + 1) {
		hak__log("%s: more than %d mistakes; the rest are not reported", p->label,
			 HAK_CONFIG_MAX_REPORTS);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		hak__log("%s:%d: %s", p->label, line, msg);
	else
		hak__log("%s: %s", p->label, msg);
}

static void core_set(struct parse *p, const char *key, const char *value)
{
	char qv[120], why[96], cur[120];
	const struct core_key *k = NULL;
	size_t i;
	for (i = 0; i < CORE_KEY_COUNT; i++)
		if (strcasecmp(key, core_keys[i].key) == 0) {
			k = &core_keys[i];
			break;
		}
	if (!k) {
		char q[64];
		report(p, p->line, "unknown key '%s' in [core]; ignored", hak__log_quote(q, sizeof q, key, false));
		return;
	}
	if (p->core_line[i])
		report(p, p->line, "[core] %s was already set at line %d; using this line", k->key,
		       p->core_line[i]);
	if (core_parse(&p->cfg->core, k, value, p->cfg->dir, why, sizeof why)) {
		p->core_line[i] = p->line;
		return;
	}
	report(p, p->line, "[core] %s = '%s': %s; using %s", k->key, hak__log_quote(qv, sizeof qv, value, false),
	       why, core_format(&p->cfg->core, k, cur, sizeof cur));
}

static void policy_set(struct parse *p, int kind, const char *key, const char *value)
{
	struct hak_policy_choice *c = &p->cfg->policy[kind];
	char q[64];
	if (strcasecmp(key, "policy") == 0) {
		char *name = strdup(value);
		if (!name) {
			report(p, p->line, "out of memory; [%s] policy ignored", hak__kinds[kind].name);
			return;
		}
		if (c->line)
			report(p, p->line, "[%s] policy was already set at line %d; using this line",
			       hak__kinds[kind].name, c->line);
		free(c->name);
		c->name = name;
		c->line = p->line;
		return;
	}
	struct hak_setting *item = NULL;
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->items[i].key, key) == 0) {
			item = &c->items[i];
			report(p, p->line, "[%s] %s was already set at line %d; using this line", hak__kinds[kind].name,
			       hak__log_quote(q, sizeof q, key, false), item->line);
			break;
		}
	char *v = strdup(value);
	if (item) {
		if (!v) {
			report(p, p->line, "out of memory; [%s] %s ignored", hak__kinds[kind].name,
			       hak__log_quote(q, sizeof q, key, false));
			return;
		}
		free((void *)item->value);
		item->value = v;
		item->line = p->line;
		return;
	}
	if (c->count == HAK_CONFIG_MAX_KEYS) {
		free(v);
		report(p, p->line, "more than %d keys in [%s]; '%s' ignored", HAK_CONFIG_MAX_KEYS,
		       hak__kinds[kind].name, hak__log_quote(q, sizeof q, key, false));
		return;
	}
	char *k = strdup(key);
	if (c->count == c->capacity && k && v) {
		size_t cap = c->capacity ? c->capacity * 2 : 8;
		struct hak_setting *grown = realloc(c->items, cap * sizeof *grown);
		if (grown) {
			c->items = grown;
			c->capacity = cap;
		}
	}
	if (!k || !v || c->count == c->capacity) {
		free(k);
		free(v);
		report(p, p->line, "out of memory; [%s] %s ignored", hak__kinds[kind].name,
		       hak__log_quote(q, sizeof q, key, false));
		return;
	}
	c->items[c->count++] = (struct hak_setting){.key = k, .value = v, .line = p->line};
}

/* inih calls this for each `key = value` the reader let through. The section comes from our own
 * state: the reader hides headers from inih. Always "success": mistakes are reported here. */
static int handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	(void)section;
	if (p->section == SEC_IGNORED)
		return 1;
	if (p->section == SEC_NONE) {
		char q[64];
		report(p, p->line, "key '%s' before any [section]; ignored", hak__log_quote(q, sizeof q, key, false));
	} else if (p->section == SEC_CORE)
		core_set(p, key, value);
	else
		policy_set(p, p->section, key, value);
	return 1;
}

static void section_header(struct parse *p, char *text, size_t len)
{
	char q[64];
	char *close = memchr(text, ']', len);
	if (!close) {
		report(p, p->line, "'[' without ']'; keys up to the next section are ignored");
		p->section = SEC_IGNORED;
		return;
	}
	const char *after = close + 1;
	while (isspace((unsigned char)*after))
		after++;
	if (*after && *after != ';' && *after != '#')
		report(p, p->line, "text after ']' ignored (one item per line)");
	char *name = text + 1;
	while (name < close && isblank((unsigned char)*name))
		name++;
	char *name_end = close;
	while (name_end > name && isblank((unsigned char)name_end[-1]))
		name_end--;
	*name_end = '\0';
	int kind = hak__kind_index(name);
	if (kind >= 0) {
		p->section = kind;
		if (!p->cfg->policy[kind].section_line)
			p->cfg->policy[kind].section_line = p->line;
	} else if (strcasecmp(name, "core") == 0) {
		p->section = SEC_CORE;
	} else {
		report(p, p->line, "unknown section [%s]; ignored up to the next section",
		       hak__log_quote(q, sizeof q, name, false));
		p->section = SEC_IGNORED;
	}
}

/* True when the line has '=' or ':' before any inline comment: inih's own test for a key line. */
static bool has_separator(const char *s)
{
	bool was_space = false;
	for (; *s && *s != '\n'; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (was_space && *s == ';')
			return false;
		was_space = isspace((unsigned char)*s);
	}
	return false;
}

/* inih's fgets-style reader: one line per call, numbered; hands inih only key lines. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	if (p->pos >= p->end || num < 3)
		return NULL;
	const char *start = p->pos;
	const char *nl = memchr(start, '\n', (size_t)(p->end - start));
	const char *stop = nl ? nl : p->end;
	p->pos = nl ? nl + 1 : p->end;
	p->line++;
	str[0] = '\n';
	str[1] = '\0';
	while (start < stop && isspace((unsigned char)*start))
		start++;
	while (stop > start && isspace((unsigned char)stop[-1]))
		stop--;
	size_t len = (size_t)(stop - start);
	/* cppcheck-suppress knownConditionTrueFalse ; it wrongly concludes the loops above empty the line */
	if (len + 2 > (size_t)num) {
		report(p, p->line, "line longer than %d bytes; ignored", num - 2);
		return str;
	}
	/* cppcheck-suppress knownConditionTrueFalse ; same false conclusion */
	if (len == 0 || *start == ';' || *start == '#')
		return str;
	memcpy(str, start, len);
	str[len] = '\0';
	bool pass = false; /* only key lines reach inih */
	if (str[0] == '[')
		section_header(p, str, len);
	else if (!has_separator(str))
		report(p, p->line, "expected 'key = value' or '[section]'; line ignored");
	else if (str[0] == '=' || str[0] == ':')
		report(p, p->line, "no key before '%c'; line ignored", str[0]);
	else
		pass = true;
	if (pass) {
		str[len] = '\n';
		str[len + 1] = '\0';
	} else {
		str[0] = '\n';
		str[1] = '\0';
	}
	return str;
}

static void set_file(struct hak_config *cfg, const char *label)
{
	copy_string(cfg->file, sizeof cfg->file, label);
	const char *slash = strrchr(cfg->file, '/');
	if (!slash)
		copy_string(cfg->dir, sizeof cfg->dir, ".");
	else if (slash == cfg->file)
		copy_string(cfg->dir, sizeof cfg->dir, "/");
	else
		snprintf(cfg->dir, sizeof cfg->dir, "%.*s", (int)(slash - cfg->file), cfg->file);
}

/* Offset of the first byte that cannot be in a text file (a control character other than
 * white space, or a byte that is not part of valid UTF-8), or len when there is none. */
static size_t first_non_text(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t more = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
		if ((c < 0x20 && !strchr("\t\n\r\f\v", c)) || c == 0x7F || more == 4 || (more == 1 && c < 0xC2))
			return i;
		for (size_t k = 1; k <= more; k++)
			if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
				return i;
		i += more + 1;
	}
	return len;
}

/* Parses into a cfg already at its defaults, with cfg->file set. */
static int parse_into(struct hak_config *cfg, const char *buf, size_t len)
{
	struct parse p = {.cfg = cfg, .pos = buf, .end = buf + len, .section = SEC_NONE};
	set_label(&p, cfg->file);
	if (len > HAK_CONFIG_MAX_BYTES) {
		report(&p, 0, "larger than %d bytes; using built-in defaults", HAK_CONFIG_MAX_BYTES);
		return EFBIG;
	}
	const char *nul = memchr(buf, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *s = buf; s < nul; s++)
			line += *s == '\n';
		report(&p, line, "NUL byte: binary data, not an INI file; using built-in defaults");
		return EINVAL;
	}
	size_t bad = first_non_text((const unsigned char *)buf, len);
	if (bad < len) {
		int line = 1;
		for (size_t i = 0; i < bad; i++)
			line += buf[i] == '\n';
		report(&p, line, "byte 0x%02x is not text (control character or invalid UTF-8): not an INI "
				 "file; using built-in defaults",
		       (unsigned char)buf[bad]);
		return EINVAL;
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		p.pos += 3; /* UTF-8 byte order mark */
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (rc == -2)
		report(&p, 0, "out of memory while parsing; later lines ignored");
	else if (rc > 0)
		report(&p, rc, "syntax error; line ignored"); /* the reader should have caught it */
	return cfg->diagnostics ? EINVAL : 0;
}

/* ---- Public entry points ---------------------------------------------------------------------- */

HAK_STARTUP void hak__config_defaults(struct hak_config *cfg)
{
	/* Field by field, not one memset of the 16 KB: every program runs this (twice), and only the
	 * file names' first bytes mean anything. */
	memset(cfg->policy, 0, sizeof cfg->policy);
	cfg->diagnostics = 0;
	copy_string(cfg->file, sizeof cfg->file, HAK_CONFIG_NO_FILE);
	copy_string(cfg->dir, sizeof cfg->dir, ".");
	core_defaults(&cfg->core);
}

HAK_STARTUP void hak__config_free(struct hak_config *cfg)
{
	for (int i = 0; i < HAK_KIND_COUNT; i++) {
		struct hak_policy_choice *c = &cfg->policy[i];
		for (size_t j = 0; j < c->count; j++) {
			free((void *)c->items[j].key);
			free((void *)c->items[j].value);
		}
		free(c->items);
		free(c->name);
	}
	hak__config_defaults(cfg);
}

int hak__config_parse_buffer(const char *buf, size_t len, const char *file_label, struct hak_config *cfg)
{
	hak__config_defaults(cfg);
	set_file(cfg, file_label ? file_label : "(string)");
	return parse_into(cfg, buf, len);
}

int hak__config_parse_string(const char *text, const char *file_label, struct hak_config *cfg)
{
	return hak__config_parse_buffer(text, strlen(text), file_label, cfg);
}

/* Reads the whole of fd, at most HAK_CONFIG_MAX_BYTES + 1 bytes (one more tells "too large"). */
static int read_all(int fd, size_t size_hint, char **out, size_t *outlen)
{
	size_t cap = size_hint && size_hint <= HAK_CONFIG_MAX_BYTES ? size_hint + 1 : 4096;
	size_t len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > HAK_CONFIG_MAX_BYTES)
				break;
			size_t next = cap * 2 > HAK_CONFIG_MAX_BYTES + 1 ? HAK_CONFIG_MAX_BYTES + 1 : cap * 2;
			char *grown = realloc(buf, next);
			if (!grown) {
				free(buf);
				return ENOMEM;
			}
			buf = grown;
			cap = next;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int hak__config_load(const char *path, struct hak_config *cfg)
{
	hak__config_defaults(cfg);
	if (!path)
		return 0;
	struct parse p = {.cfg = cfg};
	set_label(&p, path);
	if (!*path || strlen(path) >= sizeof cfg->file) {
		report(&p, 0, "%s; using built-in defaults", *path ? "file name too long" : "empty file name");
		return *path ? ENAMETOOLONG : ENOENT;
	}
	set_file(cfg, path);
	char why[256];
	int err;
	int fd = hak__open_trusted(path, &err, why, sizeof why);
	if (fd < 0) {
		report(&p, 0, "%s; using built-in defaults", why);
		return err;
	}
	struct stat st;
	size_t hint = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
	char *buf = NULL;
	size_t len = 0;
	err = hint > HAK_CONFIG_MAX_BYTES ? EFBIG : read_all(fd, hint, &buf, &len);
	close(fd);
	if (err) {
		if (err == EFBIG)
			report(&p, 0, "larger than %d bytes; using built-in defaults", HAK_CONFIG_MAX_BYTES);
		else
			report(&p, 0, "cannot read: %s; using built-in defaults", errno_text(err));
		return err;
	}
	int rc = parse_into(cfg, buf, len);
	free(buf);
	return rc;
}

HAK_STARTUP void hak__config_apply_env(struct hak_config *cfg)
{
	const char *t = hak__getenv("HAKMEM_TRACE");
	if (t) {
		if (strlen(t) < sizeof cfg->core.trace) {
			copy_string(cfg->core.trace, sizeof cfg->core.trace, t); /* relative: the current folder */
		} else {
			cfg->diagnostics++;
			hak__log("HAKMEM_TRACE: file name longer than %d bytes; not recording", HAK_CONFIG_PATH_MAX - 1);
			cfg->core.trace[0] = '\0';
		}
	}
	const char *v = hak__getenv("HAKMEM_STATS");
	if (!v || !*v)
		return;
	int mode = parse_stats(v);
	if (mode < 0) {
		int b = parse_bool(v);
		if (b >= 0)
			mode = b ? HAK_STATS_TABLE : HAK_STATS_OFF;
	}
	if (mode < 0) {
		char q[64];
		cfg->diagnostics++;
		hak__log("HAKMEM_STATS='%s': expected 0, 1, off, table or json; using %s",
			 hak__log_quote(q, sizeof q, v, false), stats_names[cfg->core.stats]);
		return;
	}
	cfg->core.stats = (enum hak_stats_mode)mode;
}

/* ---- Documentation ---------------------------------------------------------------------------- */

void hak__config_doc(FILE *out)
{
	struct hak_core_settings defaults;
	char buf[HAK_CONFIG_PATH_MAX];
	core_defaults(&defaults);
	fprintf(out, "### `[core]`\n\n| key | value | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < CORE_KEY_COUNT; i++) {
		const struct core_key *k = &core_keys[i];
		char type[64];
		switch (k->type) {
		case CT_PATH:
			snprintf(type, sizeof type, "folder");
			break;
		case CT_FILE:
			snprintf(type, sizeof type, "file name");
			break;
		case CT_UINT:
			snprintf(type, sizeof type, "integer %llu..%llu", (unsigned long long)k->min,
				 (unsigned long long)k->max);
			break;
		case CT_BOOL:
			snprintf(type, sizeof type, "`on` or `off`");
			break;
		case CT_STATS:
			snprintf(type, sizeof type, "`off`, `table` or `json`");
			break;
		}
		fprintf(out, "| `%s` | %s | `%s` | %s |\n", k->key, type,
			core_format(&defaults, k, buf, sizeof buf), k->help);
	}
	/* The policy sections, from the kinds table. */
	fprintf(out, "\n### ");
	for (int i = 0; i < HAK_KIND_COUNT; i++)
		fprintf(out, "%s`[%s]`", i == 0 ? "" : i + 1 < HAK_KIND_COUNT ? ", " : " and ", hak__kinds[i].name);
	fprintf(out, "\n\n| key | value | default | meaning |\n|---|---|---|---|\n"
		     "| `policy` | bare name (letters, digits, `_`, `-`) | built-in: ");
	for (int i = 0; i < HAK_KIND_COUNT; i++)
		fprintf(out, "%s`%s`", i ? ", " : "", hak__kinds[i].builtin->name);
	fprintf(out, " | The plugin `<policy_dir>/<kind>_<name>.so`, e.g. `ownership_central.so`. "
		     "The built-in's own name uses the copy compiled into hakmem. |\n"
		     "| any other key | text | | Passed with its line to the plugin's `init`, which "
		     "validates it (`hakmem policies --keys` lists each plugin's keys). |\n");
}
