# tests/reliability/reliability.mk: invalid frees caught and faults survived, each program in its
# own process under LD_PRELOAD (tests/reliability/run.sh). The programs link libc only.
#   make test-reliability                 builds the library, the plugins and the programs, runs all
#   make reliability-progs                only builds the programs (build/tests/reliability/)
#   REL_FILTER='^invalid_free' REL_CONFS="builtin option-f" tests/reliability/run.sh   a subset

REL_DIR := $(BUILD)/tests/reliability
REL_SRC := $(wildcard tests/reliability/*.c)
REL_BIN := $(patsubst tests/reliability/%.c,$(REL_DIR)/%,$(REL_SRC))
# -O1 with the allocator calls kept as plain external calls, so none is folded or optimised away.
REL_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -pthread \
              -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free \
              -fno-builtin-aligned_alloc -fno-builtin-posix_memalign

.PHONY: test-reliability reliability-progs test-fork-loops
reliability-progs: $(REL_BIN)

$(REL_DIR)/%: tests/reliability/%.c tests/reliability/rel.h | $(REL_DIR)
	$(CC) $(REL_CFLAGS) -o $@ $< -ldl

$(REL_DIR):
	mkdir -p $@

# The fixture plugins (tests/unit/unit.mk) are the damaged_plugin cases without a descriptor.
test-reliability: lib plugins reliability-progs $(FIXTURE_PLUGINS)
	tests/reliability/run.sh $(REL_DIR)

# The long fork loops: 1000 forks of each fork program under every configuration (minutes).
test-fork-loops: lib plugins reliability-progs
	tests/reliability/fork-loops.sh $(REL_DIR)
