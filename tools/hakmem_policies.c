/* hakmem_policies.c: `hakmem policies [DIR]`, the table of the plugins in a folder with what
 * each says of itself (kind, name, version, summary), read through the loader's own listing,
 * so a plugin shown as usable is one the allocator would load. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hakmem_tool.h"
#include "loader.h"

/* One row, copied out of the listing callback (its strings die when it returns). */
struct row {
	char kind[16];
	char name[HAK_POLICY_NAME_MAX + 8];
	char version[24];
	char text[240]; /* the summary, or why the plugin is refused; control bytes made '?' */
	bool refused;
	bool builtin; /* same name as the kind's built-in: the compiled-in copy is what runs */
	char keys[2048]; /* its settings spec, one indented line per key ("" when it declares none) */
};

static const char *const type_words[] = {"integer", "integer", "size", "on|off", "percent", "text"};

/* The spec rows as text, copied while the plugin is open. */
static void format_keys(char *out, size_t size, const struct hak_setting_spec *spec, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used + 1 < size; i++) {
		const struct hak_setting_spec *k = &spec[i];
		char key[48], help[160], def[24], range[48] = "";
		if (k->type == HAK_SETTING_TEXT)
			snprintf(range, sizeof range, " of up to %lld bytes", k->hi - 1);
		else if (k->type != HAK_SETTING_BOOL)
			snprintf(range, sizeof range, " %lld..%lld", k->lo, k->hi);
		int w = snprintf(out + used, size - used, "    %-20s %s%s, default %s: %s\n",
				 hak__log_quote(key, sizeof key, k->key ? k->key : "?", false),
				 (unsigned)k->type < 6 ? type_words[k->type] : "?", range,
				 hak__log_quote(def, sizeof def, k->def ? k->def : "-", false),
				 hak__log_quote(help, sizeof help, k->help ? k->help : "", false));
		used += w > 0 ? (size_t)w : 0;
	}
}

struct listing {
	struct row *rows;
	size_t count, cap;
	bool nomem;
};

static void collect(void *ctx, const struct hak_policy_info *info)
{
	struct listing *l = ctx;
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct row *grown = realloc(l->rows, cap * sizeof *grown);
		if (!grown) {
			l->nomem = true;
			return;
		}
		l->rows = grown;
		l->cap = cap;
	}
	struct row *r = &l->rows[l->count++];
	memset(r, 0, sizeof *r);
	snprintf(r->kind, sizeof r->kind, "%s", hak__kind_name(info->kind));
	hak__log_quote(r->name, sizeof r->name, info->name, false);
	r->refused = info->error != NULL;
	r->builtin = !strcmp(info->name, hak__builtin_name(info->kind));
	if (r->refused) {
		hak__log_quote(r->version, sizeof r->version, "-", false);
		char why[sizeof r->text - 10];
		snprintf(r->text, sizeof r->text, "REFUSED: %s", hak__log_quote(why, sizeof why, info->error, false));
	} else {
		hak__log_quote(r->version, sizeof r->version, info->version ? info->version : "?", false);
		hak__log_quote(r->text, sizeof r->text, info->summary ? info->summary : "", false);
		format_keys(r->keys, sizeof r->keys, info->spec, info->nspec);
	}
}

/* The folder to list when none was named. */
static bool default_dir(const char *config, char *buf, size_t size)
{
	if (config) {
		struct hak_config cfg;
		hak__config_load(config, &cfg); /* mistakes are reported; policy_dir is what is used */
		snprintf(buf, size, "%s", cfg.core.policy_dir);
		hak__config_free(&cfg);
		return true;
	}
	if (hak__tool_near_exe(HAK_PLUGIN_DIR_FROM_BIN, true, buf, size) ||
	    hak__tool_near_exe("../policies", true, buf, size))
		return true;
	snprintf(buf, size, "%s", HAK_PLUGIN_DIR);
	return true;
}

int hak__tool_policies(const char *dir, const char *config, bool keys)
{
	char folder[PATH_MAX];
	if (!dir) {
		default_dir(config, folder, sizeof folder);
		dir = folder;
	}
	struct listing l = {0};
	int err = hak__policy_list(dir, collect, &l);
	if (err) {
		fprintf(stderr, "hakmem: %s: cannot list plugins: %s\n", dir, strerror(err));
		free(l.rows);
		return HAK_TOOL_USAGE;
	}
	if (l.nomem) {
		fprintf(stderr, "hakmem: out of memory\n");
		free(l.rows);
		return HAK_TOOL_USAGE;
	}
	char real[PATH_MAX];
	printf("plugins in %s:\n", realpath(dir, real) ? real : dir);
	if (!l.count) {
		printf("  (none: no <kind>_<name>.so file)\n");
		free(l.rows);
		return HAK_TOOL_OK;
	}
	int wk = 4, wn = 4, wv = 7, refused = 0, builtins = 0;
	for (size_t i = 0; i < l.count; i++) {
		const struct row *r = &l.rows[i];
		int nl = (int)strlen(r->name) + (r->builtin ? 1 : 0);
		wk = (int)strlen(r->kind) > wk ? (int)strlen(r->kind) : wk;
		wn = nl > wn ? nl : wn;
		wv = (int)strlen(r->version) > wv ? (int)strlen(r->version) : wv;
	}
	printf("%-*s  %-*s  %-*s  %s\n", wk, "KIND", wn, "NAME", wv, "VERSION", "SUMMARY");
	for (size_t i = 0; i < l.count; i++) {
		const struct row *r = &l.rows[i];
		char name[sizeof r->name + 2];
		snprintf(name, sizeof name, "%s%s", r->name, r->builtin ? "*" : "");
		printf("%-*s  %-*s  %-*s  %s\n", wk, r->kind, wn, name, wv, r->version, r->text);
		if (keys)
			printf("%s", r->keys[0] ? r->keys : r->refused ? "" : "    (no keys declared)\n");
		refused += r->refused;
		builtins += r->builtin;
	}
	if (builtins)
		printf("* also compiled into libhakmem as the default of its kind: naming it loads no file\n");
	free(l.rows);
	if (refused) {
		fprintf(stderr, "hakmem: %d plugin%s in %s refused (see REFUSED above)\n", refused,
			refused == 1 ? "" : "s", dir);
		return HAK_TOOL_FAILED;
	}
	return HAK_TOOL_OK;
}
