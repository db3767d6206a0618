/* loader.c: policy plugins from name to running state (see loader.h for the naming rule, the
 * checks and the line formats). What is dlopened is the very file that was checked: the
 * descriptor from hak__open_trusted, through /proc/self/fd/N, so nobody can swap the file between
 * the check and the load. */
#include "loader.h"
#include "elf_check.h"

#include "policy_call.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "?";
}

/* ---- Pure checks -------------------------------------------------------------------------------- */

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

int hak__policy_name_check(const char *name, char *why, size_t whylen)
{
	if (!name || !*name) {
		snprintf(why, whylen, "empty name, expected a bare name");
		return EINVAL;
	}
	size_t len = strnlen(name, HAK_POLICY_NAME_MAX + 1);
	if (len > HAK_POLICY_NAME_MAX) {
		snprintf(why, whylen, "name longer than %d bytes", HAK_POLICY_NAME_MAX);
		return EINVAL;
	}
	if (strchr(name, '/') || strstr(name, "..")) {
		snprintf(why, whylen, "not a bare name (contains '%s'), expected letters, digits, '_' and '-'",
			 strchr(name, '/') ? "/" : "..");
		return EINVAL;
	}
	for (const char *s = name; *s; s++)
		if (!name_char_ok(*s)) {
			unsigned char c = (unsigned char)*s;
			if (c > 0x20 && c < 0x7f)
				snprintf(why, whylen, "not a bare name (contains '%c'), expected letters, digits, '_' and '-'",
					 c);
			else
				snprintf(why, whylen, "not a bare name (contains byte 0x%02x), expected letters, digits, '_' and '-'",
					 c);
			return EINVAL;
		}
	return 0;
}

int hak__policy_path(const char *dir, uint32_t kind, const char *name, char *out, size_t size)
{
	if (kind < 1 || kind > HAK_KIND_COUNT)
		return EINVAL;
	int n = snprintf(out, size, "%s/%s_%s.so", dir, hak__kind_name(kind), name);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			out[0] = '\0';
		return ENAMETOOLONG;
	}
	return 0;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return EINVAL;
}

/* Does the symbol cover the bytes up to the end of `field`? */
#define COVERS(avail, field) ((avail) >= offsetof(struct hak_policy_desc, field) + sizeof(((struct hak_policy_desc *)0)->field))

/* The kind's ops table: present, as big as ABI 2.0's, its mandatory fields set. */
static int validate_ops(const struct hak_policy_desc *d, char *err, size_t errlen)
{
	const struct hak_kind *k = hak__kind(d->kind);
	if (!d->ops)
		return fail(err, errlen, "%s ops table is NULL, expected one", k->name);
	size_t size = *(const size_t *)d->ops; /* every ops table starts with its size */
	if (size < k->ops_size)
		return fail(err, errlen, "%s ops table of %zu bytes, expected at least %zu (ABI 2.0)", k->name, size,
			    k->ops_size);
	return k->validate_ops(d->ops, err, errlen) ? EINVAL : 0;
}

int hak__policy_validate(const struct hak_policy_desc *d, size_t avail, uint32_t want_kind,
			 const char *want_name, char *err, size_t errlen)
{
	static const char expected_sig[] = HAK_POLICY_SIGNATURE;
	char q[80];
	if (!d)
		return fail(err, errlen, "NULL, expected a struct hak_policy_desc");
	if (!COVERS(avail, magic))
		return fail(err, errlen, "object of %zu bytes, expected a struct hak_policy_desc of at least %zu",
			    avail, (size_t)HAK_POLICY_DESC_SIZE_2_0);
	if (d->magic != HAK_POLICY_MAGIC)
		return fail(err, errlen, "magic 0x%016llx, expected 0x%016llx", (unsigned long long)d->magic,
			    (unsigned long long)HAK_POLICY_MAGIC);
	if (!COVERS(avail, size))
		return fail(err, errlen, "object of %zu bytes, expected at least %zu", avail,
			    (size_t)HAK_POLICY_DESC_SIZE_2_0);
	if (d->abi_major != HAK_POLICY_ABI_MAJOR)
		return fail(err, errlen, "ABI major %u, expected %u", (unsigned)d->abi_major,
			    (unsigned)HAK_POLICY_ABI_MAJOR);
	if (d->size < HAK_POLICY_DESC_SIZE_2_0)
		return fail(err, errlen, "struct size %zu, expected at least %zu (ABI 2.0)", d->size,
			    (size_t)HAK_POLICY_DESC_SIZE_2_0);
	if (avail < HAK_POLICY_DESC_SIZE_2_0)
		return fail(err, errlen, "object of %zu bytes, expected at least %zu (ABI 2.0)", avail,
			    (size_t)HAK_POLICY_DESC_SIZE_2_0);
	if (d->min_core_minor > HAK_POLICY_ABI_MINOR)
		return fail(err, errlen, "needs core ABI %u.%u, expected at most %u.%u (this core)",
			    (unsigned)d->abi_major, (unsigned)d->min_core_minor, (unsigned)HAK_POLICY_ABI_MAJOR,
			    (unsigned)HAK_POLICY_ABI_MINOR);
	if (!d->signature)
		return fail(err, errlen, "signature NULL, expected '%s'", expected_sig);
	/* Bounded: a broken plugin's string may not end where it should. */
	if (strncmp(d->signature, expected_sig, sizeof expected_sig) != 0) {
		char found[sizeof expected_sig + 8];
		snprintf(found, sizeof found, "%.*s", (int)(sizeof found - 1), d->signature);
		return fail(err, errlen, "signature '%s', expected '%s'", hak__log_quote(q, sizeof q, found, false),
			    expected_sig);
	}
	if (want_kind ? d->kind != want_kind : (d->kind < 1 || d->kind > HAK_KIND_COUNT)) {
		if (want_kind)
			return fail(err, errlen, "kind %u (%s), expected %u (%s)", (unsigned)d->kind,
				    hak__kind_name(d->kind), (unsigned)want_kind, hak__kind_name(want_kind));
		return fail(err, errlen, "kind %u, expected " HAK_KIND_RANGE, (unsigned)d->kind);
	}
	char why[120];
	const char *expected_name = want_name ? want_name : "a bare name";
	const char *quote = want_name ? "'" : "";
	if (!d->name)
		return fail(err, errlen, "name NULL, expected %s%s%s", quote, expected_name, quote);
	if (hak__policy_name_check(d->name, why, sizeof why) != 0) {
		char found[HAK_POLICY_NAME_MAX + 2]; /* bounded read of a string we do not trust yet */
		snprintf(found, sizeof found, "%.*s", HAK_POLICY_NAME_MAX + 1, d->name);
		return fail(err, errlen, "name '%s' (not a bare name), expected %s%s%s",
			    hak__log_quote(q, sizeof q, found, false), quote, expected_name, quote);
	}
	if (want_name && strcmp(d->name, want_name) != 0)
		return fail(err, errlen, "name '%s', expected '%s'", d->name, want_name);
	if (!d->init)
		return fail(err, errlen, "init is NULL, expected a function");
	if (!d->fork_prepare != !d->fork_parent)
		return fail(err, errlen, "only one of fork_prepare and fork_parent is set, expected both or neither");
	if (COVERS(avail, fork_try_prepare) && HAK_STRUCT_HAS(d, fork_try_prepare) && d->fork_try_prepare &&
	    !d->fork_prepare)
		return fail(err, errlen, "fork_try_prepare is set without fork_prepare and fork_parent, expected both");
	if (d->settings_count && !d->settings_spec)
		return fail(err, errlen, "settings_count %zu with no settings_spec, expected a table", d->settings_count);
	return validate_ops(d, err, errlen);
}

/* ---- Loading ------------------------------------------------------------------------------------ */

/* "<ini>:<line>: policy '<name>': " for this kind's lines. */
static void line_prefix(char *buf, size_t size, const struct hak_config *cfg, uint32_t kind, const char *name)
{
	char file[100], q[HAK_POLICY_NAME_MAX + 8];
	const struct hak_policy_choice *c = &cfg->policy[kind - 1];
	int line = c->line ? c->line : c->section_line;
	hak__log_quote(file, sizeof file, cfg->file, true);
	hak__log_quote(q, sizeof q, name, false);
	if (line > 0)
		snprintf(buf, size, "%s:%d: policy '%s'", file, line, q);
	else
		snprintf(buf, size, "%s: policy '%s'", file, q);
}

/* dlopen of the file open at `fd`, through /proc/self/fd/K. glibc matches a name it has seen
 * before it looks at the file, and K is reused with fd numbers (a name also sticks to an object
 * found under another one), so a reused name would hand back an earlier plugin. K is therefore a
 * descriptor of /dev/null whose name glibc does not know (an RTLD_NOLOAD probe cannot match
 * /dev/null by file identity, only by name), then made a copy of fd with dup3. */
static void *dlopen_fd(int fd, char *why, size_t whylen)
{
	enum { TRIES = 16 };
	int taken[TRIES], ntaken = 0, slot = -1;
	char name[40];
	void *handle = NULL;
	snprintf(why, whylen, "no free /proc/self/fd name");
	while (ntaken < TRIES) {
		int k = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (k < 0) {
			snprintf(why, whylen, "cannot open /dev/null: %s", errno_name(errno));
			break;
		}
		snprintf(name, sizeof name, "/proc/self/fd/%d", k);
		void *known = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
		if (!known) {
			slot = k;
			break;
		}
		dlclose(known); /* the probe took a reference */
		taken[ntaken++] = k; /* held so the next open gets another number */
	}
	if (slot >= 0) {
		dlerror();
		if (dup3(fd, slot, O_CLOEXEC) != slot) {
			snprintf(why, whylen, "dup3 failed: %s", errno_name(errno));
		} else if (!(handle = dlopen(name, RTLD_NOW | RTLD_LOCAL))) {
			const char *e = dlerror();
			hak__log_quote(why, whylen < 160 ? whylen : 160, e ? e : "?", false);
		}
		close(slot);
	}
	while (ntaken > 0)
		close(taken[--ntaken]);
	return handle;
}

/* Opens, checks and maps one plugin file; returns the handle and its descriptor, or NULL with
 * the reason in why (already in the one-line shape, without prefix and fallback). */
static void *open_plugin(const char *path, uint32_t want_kind, const char *want_name,
			 const struct hak_policy_desc **desc, int *errp, char *why, size_t whylen)
{
	char qpath[100], reason[256];
	hak__log_quote(qpath, sizeof qpath, path, true);
	int fd = hak__open_trusted(path, errp, reason, sizeof reason);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", qpath, reason);
		return NULL;
	}
	/* A truncated or foreign file would be mapped past its end by dlopen: SIGBUS in the host. */
	if (hak__elf_check_fd(fd, reason, sizeof reason) != 0) {
		snprintf(why, whylen, "%s: %s", qpath, reason);
		close(fd);
		*errp = ENOEXEC;
		return NULL;
	}
	void *handle = dlopen_fd(fd, reason, sizeof reason);
	close(fd);
	if (!handle) {
		snprintf(why, whylen, "%s: dlopen failed: %s", qpath, reason);
		*errp = ENOEXEC;
		return NULL;
	}
	dlerror();
	const struct hak_policy_desc *d = dlsym(handle, HAK_POLICY_SYMBOL);
	if (!d) {
		snprintf(why, whylen, "%s: symbol %s: not found, expected a struct hak_policy_desc", qpath,
			 HAK_POLICY_SYMBOL);
		dlclose(handle);
		*errp = ENOENT;
		return NULL;
	}
	/* The symbol table says how big the object is: read nothing beyond it. */
	size_t avail = SIZE_MAX;
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (dladdr1(d, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size > 0)
		avail = (size_t)sym->st_size;
	if (hak__policy_validate(d, avail, want_kind, want_name, reason, sizeof reason) != 0) {
		snprintf(why, whylen, "%s: symbol %s: %s", qpath, HAK_POLICY_SYMBOL, reason);
		dlclose(handle);
		*errp = EINVAL;
		return NULL;
	}
	*desc = d;
	return handle;
}

int hak__policy_load(uint32_t kind, const char *name, const struct hak_config *cfg,
		     const struct hak_core_api *core, hak_policy *self, struct hak_policy_instance *out)
{
	char where[240], why[400];
	memset(out, 0, sizeof *out);
	if (!hak__kind(kind)) {
		hak__log("%s: policy kind %u, expected " HAK_KIND_RANGE "; ignored", cfg->file, (unsigned)kind);
		return EINVAL;
	}
	const char *fallback = hak__builtin_name(kind);
	line_prefix(where, sizeof where, cfg, kind, name);
	if (hak__policy_name_check(name, why, sizeof why) != 0) {
		hak__log("%s: %s; using built-in '%s'", where, why, fallback);
		return EINVAL;
	}
	if (hak__policy_path(cfg->core.policy_dir, kind, name, out->path, sizeof out->path) != 0) {
		hak__log("%s: plugin path longer than %d bytes; using built-in '%s'", where,
			 HAK_CONFIG_PATH_MAX - 1, fallback);
		return ENAMETOOLONG;
	}
	int err = 0;
	const struct hak_policy_desc *d = NULL;
	void *handle = open_plugin(out->path, kind, name, &d, &err, why, sizeof why);
	if (!handle) {
		hak__log("%s: %s; using built-in '%s'", where, why, fallback);
		out->path[0] = '\0';
		return err;
	}
	struct hak_settings settings = hak__config_settings(cfg, (int)kind - 1);
	char msg[200] = "";
	void *state = NULL;
	int rc = hak__pcall_init(d, core, self, &settings, &state, msg, sizeof msg);
	if (rc != 0) {
		char qpath[100], qmsg[160];
		hak__log("%s: %s: symbol %s: init failed (%s): %s; using built-in '%s'", where,
			 hak__log_quote(qpath, sizeof qpath, out->path, true), HAK_POLICY_SYMBOL,
			 rc > 0 ? errno_name(rc) : "negative", hak__log_quote(qmsg, sizeof qmsg, msg, false),
			 fallback);
		dlclose(handle);
		out->path[0] = '\0';
		return rc > 0 ? rc : EINVAL;
	}
	out->desc = d;
	out->state = state;
	out->handle = handle; /* never closed: the policy's memory and functions may be in use */
	return 0;
}

int hak__policy_activate(uint32_t kind, const struct hak_config *cfg, const struct hak_core_api *core,
			 const struct hak_policy_desc *builtin, bool builtin_running, hak_policy *self,
			 struct hak_policy_instance *out)
{
	char err[200];
	memset(out, 0, sizeof *out);
	if (!hak__kind(kind) || !builtin)
		return EINVAL;
	if (hak__policy_validate(builtin, sizeof *builtin, kind, NULL, err, sizeof err) != 0) {
		hak__log("built-in %s policy: %s", hak__kind_name(kind), err);
		return EINVAL;
	}
	const struct hak_policy_choice *c = &cfg->policy[kind - 1];
	struct hak_settings settings = hak__config_settings(cfg, (int)kind - 1);
	if (c->name && *c->name && strcmp(c->name, builtin->name) != 0) {
		if (hak__policy_load(kind, c->name, cfg, core, self, out) == 0) {
			if (cfg->core.verbose) {
				char qpath[120];
				hak__log("%s policy '%s' %s from %s", hak__kind_name(kind), out->desc->name,
					 out->desc->version ? out->desc->version : "?",
					 hak__log_quote(qpath, sizeof qpath, out->path, true));
			}
			return 0;
		}
		out->fallback = true;
		settings.items = NULL; /* those keys were meant for the plugin that failed */
		settings.count = 0;
	}
	void *state = NULL;
	int rc = 0;
	if (settings.count == 0 && builtin_running)
		goto reuse; /* its default instance runs already: no second init of its static state */
	rc = hak__pcall_init(builtin, core, self, &settings, &state, err, sizeof err);
	if (rc != 0 && settings.count > 0) {
		char qmsg[160], where[240];
		err[sizeof err - 1] = '\0';
		line_prefix(where, sizeof where, cfg, kind, builtin->name);
		hak__log("%s (built-in): init failed (%s): %s; using built-in '%s' with default settings", where,
			 rc > 0 ? errno_name(rc) : "negative", hak__log_quote(qmsg, sizeof qmsg, err, false),
			 builtin->name);
		out->fallback = true;
		settings.items = NULL;
		settings.count = 0;
		if (builtin_running)
			goto reuse;
		rc = hak__pcall_init(builtin, core, self, &settings, &state, err, sizeof err);
	}
	if (rc != 0) {
		char qmsg[160];
		err[sizeof err - 1] = '\0';
		hak__log("built-in %s policy '%s': init failed with default settings (%s): %s",
			 hak__kind_name(kind), builtin->name, rc > 0 ? errno_name(rc) : "negative",
			 hak__log_quote(qmsg, sizeof qmsg, err, false));
		return rc > 0 ? rc : EINVAL;
	}
	if (0) {
reuse:
		out->reused = true;
	}
	out->desc = builtin;
	out->state = state;
	out->builtin = true;
	if (cfg->core.verbose)
		hak__log("%s policy '%s' (built-in)", hak__kind_name(kind), builtin->name);
	return 0;
}

/* ---- Listing ------------------------------------------------------------------------------------ */

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits "<kind>_<name>.so"; false for any other file name. */
static bool parse_file_name(const char *file, uint32_t *kind, char *name, size_t size)
{
	size_t len = strlen(file);
	if (len < 4 || strcmp(file + len - 3, ".so") != 0)
		return false;
	for (uint32_t k = 1; k <= HAK_KIND_COUNT; k++) {
		const char *kn = hak__kind_name(k);
		size_t kl = strlen(kn);
		if (strncmp(file, kn, kl) == 0 && file[kl] == '_') {
			size_t nl = len - 3 - kl - 1;
			if (nl == 0 || nl >= size)
				return false;
			memcpy(name, file + kl + 1, nl);
			name[nl] = '\0';
			*kind = k;
			return true;
		}
	}
	return false;
}

int hak__policy_list(const char *dir, hak_policy_list_fn fn, void *ctx)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno;
	char **files = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint32_t kind;
		char name[HAK_POLICY_NAME_MAX + 8];
		if (!parse_file_name(e->d_name, &kind, name, sizeof name))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **grown = realloc(files, ncap * sizeof *grown);
			if (!grown) {
				rc = ENOMEM;
				break;
			}
			files = grown;
			cap = ncap;
		}
		if (!(files[count] = strdup(e->d_name))) {
			rc = ENOMEM;
			break;
		}
		count++;
	}
	closedir(d);
	if (count)
		qsort(files, count, sizeof *files, compare_names);
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct hak_policy_info info = {0};
		char path[HAK_CONFIG_PATH_MAX], name[HAK_POLICY_NAME_MAX + 8], why[400];
		uint32_t kind = 0;
		parse_file_name(files[i], &kind, name, sizeof name);
		if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= (int)sizeof path)
			continue;
		info.path = path;
		info.kind = kind;
		info.name = name;
		int err = 0;
		const struct hak_policy_desc *desc = NULL;
		char nwhy[120];
		void *handle = NULL;
		if (hak__policy_name_check(name, nwhy, sizeof nwhy) != 0)
			snprintf(why, sizeof why, "%s", nwhy);
		else
			handle = open_plugin(path, kind, name, &desc, &err, why, sizeof why);
		if (handle) {
			info.version = desc->version;
			info.summary = desc->summary;
			info.spec = desc->settings_spec;
			info.nspec = desc->settings_spec ? desc->settings_count : 0;
		} else {
			info.error = why;
		}
		fn(ctx, &info);
		if (handle)
			dlclose(handle);
	}
	for (size_t i = 0; i < count; i++)
		free(files[i]);
	free(files);
	return rc;
}
