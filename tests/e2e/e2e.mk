# End-to-end tests: C programs in tests/e2e/ built against libc only (never linked with hakmem)
# into build/tests/e2e/, run by tests/e2e/run.sh, each in its own process under LD_PRELOAD.
# `make test-e2e` builds the library and the programs, then runs the suite;
# `make test-e2e E2E_PRELOAD=none` runs the same programs under plain glibc.

E2E_DIR := $(BUILD)/tests/e2e
E2E_SRC := $(wildcard tests/e2e/*.c)
E2E_BIN := $(patsubst tests/e2e/%.c,$(E2E_DIR)/%,$(E2E_SRC))
# -O1 with malloc and friends as plain external calls, so no allocation is optimised away.
E2E_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -pthread \
              -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free \
              -fno-builtin-aligned_alloc -fno-builtin-posix_memalign

.PHONY: e2e-progs
e2e-progs: $(E2E_BIN)

$(E2E_DIR)/%: tests/e2e/%.c tests/e2e/e2e.h | $(E2E_DIR)
	$(CC) $(E2E_CFLAGS) -o $@ $<

$(E2E_DIR):
	mkdir -p $@

test-e2e: all e2e-progs $(BUILD)/tools/stats-keys
	E2E_PRELOAD=$(E2E_PRELOAD) tests/e2e/run.sh $(E2E_DIR)
