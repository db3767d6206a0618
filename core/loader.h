/* loader.h: turns the policy named in the configuration into a running policy. Owns the plugin
 * file naming rule, the safe dlopen, the descriptor checks, the call to init, and the fall-back
 * to the built-in default with one diagnostic line.
 *
 * Naming rule: policy `<name>` of kind `<kind>` (trim, superslab, ownership) is the file
 *     <policy_dir>/<kind>_<name>.so          e.g. build/policies/ownership_central.so
 * where <name> is a bare name: 1 to HAK_POLICY_NAME_MAX bytes of letters, digits, '_' and '-'
 * (so never '/', '.', or ".."). The descriptor's `name` must equal <name> and its `kind` the kind.
 *
 * The built-in defaults (the kinds table, kinds.c: trim `idle`, superslab `fixed`, ownership
 * `tls`) are compiled into the core. `policy = <the built-in's name>` (or no `policy =` at all) uses that compiled copy and
 * opens no file: the .so of the same name is built from the same source, so loading it would add
 * only a dlopen and a chance of a stale build. Any other name must load, or one line is logged and
 * the built-in runs instead.
 *
 * Every refusal is ONE line:
 *   hakmem: <ini>:<line>: policy '<name>': <so file>: symbol hak_policy_descriptor: <found>,
 *           expected <expected>; using built-in '<default>'
 * (file-level failures say what happened to the file instead of naming the symbol).
 *
 * What is checked at load, besides the descriptor's own fields: the ELF file itself, the kind's
 * ops table (its size at least the ABI 2.0 one, its mandatory functions: the kinds table's
 * validate_ops), fork_prepare and fork_parent both or neither, min_core_minor no newer than this
 * core, a settings spec present when its count is not 0. Every op is then called through
 * policy_call.h, which tests the optional ones.
 */
#ifndef HAK_LOADER_H
#define HAK_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hakmem_policy.h"
#include "log.h"

#define HAK_POLICY_NAME_MAX   64   /* bytes in a policy name */

/* The smallest descriptor a plugin may export: the end of the 2.0 fields. */
#define HAK_POLICY_DESC_SIZE_2_0 \
	(offsetof(struct hak_policy_desc, settings_count) + sizeof(((struct hak_policy_desc *)0)->settings_count))

/* A policy ready to run. */
struct hak_policy_instance {
	const struct hak_policy_desc *desc; /* NULL: nothing could be started */
	void *state;                        /* what desc->init returned */
	void *handle;                       /* dlopen handle, never closed; NULL for the built-in */
	bool builtin;                       /* desc is the compiled-in default */
	bool fallback;                      /* the configured choice failed; the built-in runs instead */
	bool reused;                        /* the running default instance of the built-in: no init ran */
	char path[HAK_CONFIG_PATH_MAX];     /* the .so loaded; "" for the built-in */
};

/* 0 when `name` is a bare name; else EINVAL and the reason in `why`. Pure. */
HAK_HIDDEN int hak__policy_name_check(const char *name, char *why, size_t whylen);

/* Writes <dir>/<kind>_<name>.so into out; 0, EINVAL (bad kind) or ENAMETOOLONG. Pure. */
HAK_HIDDEN int hak__policy_path(const char *dir, uint32_t kind, const char *name, char *out, size_t size);

/* Checks a descriptor: magic, ABI major equal, size >= the 2.0 size, min_core_minor <= this
 * core's minor, signature equal, kind == want_kind (0: any valid kind), name bare and ==
 * want_name (NULL: any), init present, the kind's ops table present, big enough and with its
 * mandatory functions, fork_prepare/fork_parent paired, the settings spec. `avail` is how many bytes
 * of *d are readable (the symbol's size), SIZE_MAX when unknown; fields are read only inside it.
 * 0, or EINVAL with "<found>, expected <expected>" in err. Pure: no I/O, no allocation. */
HAK_HIDDEN int hak__policy_validate(const struct hak_policy_desc *d, size_t avail, uint32_t want_kind,
				    const char *want_name, char *err, size_t errlen);

/* Loads plugin `name` of `kind` from cfg->core.policy_dir: name check, path, safe open (the
 * checks of hak__open_trusted), dlopen of the checked descriptor through /proc/self/fd, dlsym,
 * hak__policy_validate, then init(core, self, the section's settings); `self` is the record the
 * policy will run in (the tools pass a scratch one). 0 with *out filled, or an errno
 * value after ONE logged line (file and line from cfg), with nothing left loaded. A plugin whose
 * init succeeded is never closed. */
HAK_HIDDEN int hak__policy_load(uint32_t kind, const char *name, const struct hak_config *cfg,
				const struct hak_core_api *core, hak_policy *self, struct hak_policy_instance *out);

/* The whole start-up decision for one kind: the configured plugin when there is one and it loads,
 * else `builtin` (the compiled-in descriptor of that kind). The built-in gets the section's
 * settings when it is the configured choice, no settings when it replaces a failed plugin; if its
 * init refuses the settings, one line and a second init with none. Logs one line per policy when
 * cfg->core.verbose. Returns 0 with out->desc set (out->fallback tells whether the configured
 * choice was honoured), or an errno value with out->desc NULL when even the built-in would not
 * start (a bug: the caller decides). builtin_running: the built-in's default instance already
 * runs (the allocator booted it); where the built-in would be started with no settings, that
 * instance is named instead (out->reused, state NULL) and its init is not run a second time: a
 * built-in keeps its default state in static storage. */
HAK_HIDDEN int hak__policy_activate(uint32_t kind, const struct hak_config *cfg,
				    const struct hak_core_api *core, const struct hak_policy_desc *builtin,
				    bool builtin_running, hak_policy *self, struct hak_policy_instance *out);

/* One plugin file found by hak__policy_list. Strings live until the callback returns. */
struct hak_policy_info {
	const char *path;    /* the .so */
	uint32_t kind;       /* from the file name */
	const char *name;    /* from the file name */
	const char *version; /* from the descriptor; NULL when refused */
	const char *summary; /* from the descriptor; NULL when refused */
	const struct hak_setting_spec *spec; /* the keys it declares (settings_spec), or NULL */
	size_t nspec;
	const char *error;   /* NULL when the plugin passes every load-time check, else why not */
};
typedef void (*hak_policy_list_fn)(void *ctx, const struct hak_policy_info *info);

/* Calls fn for each `<kind>_<name>.so` in dir, sorted by file name, after the same checks as a
 * load (without init). Other files are skipped. 0, or an errno value when dir cannot be read.
 * Uses opendir and dlopen: for the `hakmem policies` tool, not for the allocator's start-up. */
HAK_HIDDEN int hak__policy_list(const char *dir, hak_policy_list_fn fn, void *ctx);

#endif
