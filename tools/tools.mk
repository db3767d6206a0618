# tools/tools.mk: small programs built from the core's own sources: the configuration
# reference generator behind `make docs` (and `make docs-check`, run by `make test`).
TOOLS_DIR := $(BUILD)/tools

# The configuration parser and the kinds table (which names the built-in policies, compiled in).
TOOLS_CORE := core/config.c core/trusted_dir.c core/log.c core/kinds.c $(patsubst %,policies/%.c,$(BUILTIN_POLICIES))

$(TOOLS_DIR)/config-doc: tools/config_doc.c $(TOOLS_CORE) $(wildcard core/*.h include/*.h) | $(BUILD)/.deps
	@mkdir -p $(TOOLS_DIR)
	$(CC) $(CSTD) $(WARN) $(OPT) -Iinclude -Icore -DHAK_BUILTIN -DHAK_PLUGIN_DIR='"$(PLUGIN_DIR)"' \
		-o $@ tools/config_doc.c $(TOOLS_CORE) -linih

# The keys of the stats JSON, from the one list that declares them (core/stats.h): the e2e
# stats test checks every one of them is printed.
$(TOOLS_DIR)/stats-keys: tools/stats_keys.c core/stats.h | $(BUILD)/.deps
	@mkdir -p $(TOOLS_DIR)
	$(CC) $(CSTD) $(WARN) $(OPT) -Iinclude -Icore -o $@ tools/stats_keys.c

.PHONY: docs docs-check
docs: $(TOOLS_DIR)/config-doc
	$(TOOLS_DIR)/config-doc | tools/update-readme-section README.md config-reference

# The README's reference must be what the settings table says.
docs-check: $(TOOLS_DIR)/config-doc
	@$(TOOLS_DIR)/config-doc > $(TOOLS_DIR)/config-reference.md
	@awk '/<!-- config-reference:begin -->/{f=1;next} /<!-- config-reference:end -->/{f=0} f' README.md \
		| diff -u - $(TOOLS_DIR)/config-reference.md >/dev/null || \
		{ echo "docs-check: README.md's configuration reference is stale; run make docs" >&2; exit 1; }
	@echo "docs-check: README configuration reference matches the settings table"
