/* fuzz_config: libFuzzer harness for the INI parser, hak__config_parse_buffer (core/config.c).
 * Besides the sanitizers' checks it holds the parser to its contract (core/config.h):
 *   - the result is 0 (clean), EINVAL (mistakes, reported) or another errno value;
 *   - a clean result printed nothing, and every diagnostic is ONE line starting "hakmem: " with
 *     no control byte in it (untrusted text is quoted);
 *   - at most HAK_CONFIG_MAX_REPORTS lines plus one summary per file;
 *   - every setting is in range and every string ends inside its buffer;
 *   - hak__config_free releases everything (LeakSanitizer checks at exit of each run). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

static unsigned lines_seen;

static void contract_broken(const char *what, const char *line)
{
	fprintf(stderr, "fuzz_config: contract broken: %s: [%s]\n", what, line ? line : "");
	abort();
}

/* Diagnostics come here instead of stderr. */
static void sink(const char *line)
{
	lines_seen++;
	if (strncmp(line, "hakmem: ", 8) != 0)
		contract_broken("a diagnostic does not start with 'hakmem: '", line);
	for (const unsigned char *c = (const unsigned char *)line; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			contract_broken("a diagnostic holds a control byte (untrusted text not quoted)", line);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hak__log_set_sink(sink);
	return 0;
}

static void check_string(const char *s, size_t max, const char *what)
{
	if (!s)
		contract_broken(what, "NULL");
	if (strnlen(s, max) >= max)
		contract_broken(what, "not terminated inside its buffer");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hak_config cfg;
	lines_seen = 0;
	int rc = hak__config_parse_buffer((const char *)data, size, "/fuzz/dir/hakmem.ini", &cfg);
	if (rc < 0)
		contract_broken("negative result", NULL);
	if (rc == 0 && lines_seen)
		contract_broken("a clean result (0) printed diagnostics", NULL);
	if (rc == 0 && cfg.diagnostics)
		contract_broken("a clean result (0) with diagnostics counted", NULL);
	if (rc != 0 && !lines_seen)
		contract_broken("a refusal printed nothing", NULL);
	if (lines_seen > HAK_CONFIG_MAX_REPORTS + 1)
		contract_broken("more diagnostic lines than HAK_CONFIG_MAX_REPORTS plus a summary", NULL);
	check_string(cfg.file, sizeof cfg.file, "file");
	check_string(cfg.dir, sizeof cfg.dir, "dir");
	check_string(cfg.core.policy_dir, sizeof cfg.core.policy_dir, "policy_dir");
	if (cfg.core.map_budget > INT32_MAX)
		contract_broken("map_budget out of its bounds", NULL);
	if (cfg.core.stats != HAK_STATS_OFF && cfg.core.stats != HAK_STATS_TABLE && cfg.core.stats != HAK_STATS_JSON)
		contract_broken("stats out of its enum", NULL);
	for (int k = 0; k < HAK_KIND_COUNT; k++) {
		const struct hak_policy_choice *c = &cfg.policy[k];
		if (c->name)
			(void)strlen(c->name);
		if (c->count > c->capacity || c->count > HAK_CONFIG_MAX_KEYS)
			contract_broken("more plugin keys than allowed", NULL);
		struct hak_settings s = hak__config_settings(&cfg, k);
		for (size_t i = 0; i < s.count; i++) {
			(void)strlen(s.items[i].key);
			(void)strlen(s.items[i].value);
			if (s.items[i].line <= 0)
				contract_broken("a plugin key without its line", s.items[i].key);
		}
	}
	hak__config_free(&cfg);
	return 0;
}
