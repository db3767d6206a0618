# Tests: cmocka unit tests of the core modules (tests/unit/unit.mk) and end-to-end
# tests that run separate programs under LD_PRELOAD (tests/e2e/e2e.mk).
.PHONY: test test-unit test-e2e test-tools test-trace test-debug check-layers check-layout safe-folder
test: deps safe-folder check-layers check-layout test-unit test-e2e test-reliability test-tools test-trace test-debug docs-check
-include tests/unit/unit.mk
-include tests/e2e/e2e.mk
-include tests/sanitize.mk
-include tests/reliability/reliability.mk
-include tests/fuzz/fuzz.mk
-include tests/check-e2e/check-e2e.mk

# The suites load the checkout's plugins and INI files, which hakmem refuses in a folder others
# can write to (up to /): say so at once instead of failing a hundred tests.
safe-folder:
	@why=$$(tools/safe-folder .) || { echo "make test: $$why: hakmem refuses plugins and INI files" \
		"under such a folder; clone the checkout into a folder only you can write to (e.g. under \$$HOME)"; exit 1; }

# No core file calls into or includes a higher layer (core/base.h lists the layers).
check-layers: lib
	@tools/check-layers $(BUILD)

# The library's code laid out for small programs' memory (core/layout.ld, the Makefile's link).
check-layout: lib
	@tools/check-layout $(LIB)

# The installed layout, pkg-config, the launcher, `hakmem policies` and `hakmem check`.
test-tools: all
	tests/e2e/tools.sh

# Recording and replaying a threaded, forking program (tests/e2e/trace.sh).
test-trace: all e2e-progs
	tests/e2e/trace.sh $(E2E_DIR)

# The library built with every internal check on (HAK_DEBUG=2: asserts and the expensive
# invariants of core/base.h) in its own build folder, under the threaded end-to-end tests and
# every configuration: a broken list link or count aborts with its line instead of passing.
DEBUG_BUILD := $(BUILD)/debug
test-debug: all e2e-progs
	@$(MAKE) --no-print-directory BUILD=$(DEBUG_BUILD) HAK_DEBUG=2 OPT='-O1 -g' $(DEBUG_BUILD)/libhakmem.so
	HAKMEM_LIB=$(DEBUG_BUILD)/libhakmem.so E2E_FILTER='^(accounting|xthread|threads|larson|fork|large|api)\[' \
		tests/e2e/run.sh $(E2E_DIR)
