# Tests: cmocka unit tests of the core modules (tests/unit/unit.mk) and end-to-end
# tests that run separate programs under LD_PRELOAD (tests/e2e/e2e.mk).
.PHONY: test test-unit test-e2e test-tools test-trace
test: deps test-unit test-e2e test-reliability test-tools test-trace docs-check
-include tests/unit/unit.mk
-include tests/e2e/e2e.mk
-include tests/sanitize.mk
-include tests/reliability/reliability.mk
-include tests/fuzz/fuzz.mk
-include tests/check-e2e/check-e2e.mk

# The installed layout, pkg-config, the launcher, `hakmem policies` and `hakmem check`.
test-tools: all
	tests/e2e/tools.sh

# Recording and replaying a threaded, forking program (tests/e2e/trace.sh).
test-trace: all e2e-progs
	tests/e2e/trace.sh $(E2E_DIR)
