# tests/unit/unit.mk: the cmocka unit tests (included by tests/tests.mk). One runner per
# tests/unit/test_*.c, built into build/tests/unit/ and all run by `make test-unit`.
#
# Every runner links UNIT_CORE_OBJS: each core/*.c compiled with -DHAK_UNIT_TEST into
# build/unit/core/, EXCEPT core/api.c (the one file exporting malloc and free: it must never enter a
# test runner, cmocka allocates), plus every policy in policies/ compiled with -DHAK_BUILTIN (the
# core's three built-ins, and the others so a plugin's unit test can name its descriptor,
# hak__builtin_<kind>_<name>). They are linked through an archive, so a runner takes only the
# objects it references (a test of the config parser does not need the allocator to link); every
# object must still compile.
# Test helpers shared by several runners (tests/unit/*.c not named test_*.c, e.g. fake_core.c, the
# fake core of the plugin tests) go into a second archive, linked before the core's.
# A test needing extra link flags (cmocka mocks) sets them by name, e.g.
#   UNIT_LDFLAGS_test_superslab := -Wl,--wrap=mmap -Wl,--wrap=munmap
# Fixture plugins: each tests/fixtures/*.c becomes build/tests/fixtures/<same>.so.

UNIT_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -Iinclude -Icore -DHAK_UNIT_TEST -DHAK_DEBUG=2 \
                -DHAK_SOURCE_ROOT='"$(CURDIR)"' $(UNIT_SAN_FLAGS)
UNIT_LIBS    := -lcmocka -linih -ldl -lpthread
UNIT_OBJ_DIR := $(BUILD)/unit
UNIT_BIN_DIR := $(BUILD)/tests/unit
FIXTURE_DIR  := $(BUILD)/tests/fixtures

UNIT_CORE_SRC    := $(filter-out core/api.c,$(wildcard core/*.c))
UNIT_BUILTIN_SRC := $(wildcard policies/*.c)
UNIT_CORE_OBJS   := $(patsubst core/%.c,$(UNIT_OBJ_DIR)/core/%.o,$(UNIT_CORE_SRC)) \
                    $(patsubst policies/%.c,$(UNIT_OBJ_DIR)/builtin/%.o,$(UNIT_BUILTIN_SRC))
UNIT_CORE_LIB    := $(UNIT_OBJ_DIR)/libhakcore.a
UNIT_HELPER_SRC  := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(patsubst tests/unit/%.c,$(UNIT_OBJ_DIR)/helpers/%.o,$(UNIT_HELPER_SRC))
UNIT_HELPER_LIB  := $(UNIT_OBJ_DIR)/libhaktest.a
UNIT_TESTS       := $(patsubst tests/unit/%.c,$(UNIT_BIN_DIR)/%,$(wildcard tests/unit/test_*.c))
UNIT_HEADERS     := $(wildcard core/*.h include/*.h tests/unit/*.h tests/fixtures/*.h)

FIXTURE_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-override-init -O1 -g -fPIC -shared \
                   -fvisibility=hidden -Iinclude
FIXTURE_PLUGINS := $(patsubst tests/fixtures/%.c,$(FIXTURE_DIR)/%.so,$(wildcard tests/fixtures/*.c))

.PHONY: unit-build
unit-build: $(UNIT_TESTS) $(FIXTURE_PLUGINS)

# Runs every runner even when one fails; fails at the end if any did.
test-unit: unit-build
	@fail=0; for t in $(UNIT_TESTS); do \
		echo "== $$t"; $$t || { echo "== FAILED: $$t"; fail=1; }; \
	done; exit $$fail

$(UNIT_OBJ_DIR)/core/%.o: core/%.c $(UNIT_HEADERS) | $(UNIT_OBJ_DIR)/core
	$(CC) $(UNIT_CFLAGS) -c $< -o $@

$(UNIT_OBJ_DIR)/builtin/%.o: policies/%.c include/hakmem_policy.h include/hakmem_batch_queue.h | $(UNIT_OBJ_DIR)/builtin
	$(CC) $(UNIT_CFLAGS) -DHAK_BUILTIN -c $< -o $@

$(UNIT_OBJ_DIR)/helpers/%.o: tests/unit/%.c $(UNIT_HEADERS) | $(UNIT_OBJ_DIR)/helpers
	$(CC) $(UNIT_CFLAGS) -c $< -o $@

$(UNIT_CORE_LIB): $(UNIT_CORE_OBJS) | $(UNIT_OBJ_DIR)
	rm -f $@
	ar rcs $@ $^

$(UNIT_HELPER_LIB): $(UNIT_HELPER_OBJS) | $(UNIT_OBJ_DIR)
	rm -f $@
	ar rcs $@ $^

$(UNIT_TESTS): $(UNIT_BIN_DIR)/%: tests/unit/%.c $(UNIT_HELPER_LIB) $(UNIT_CORE_LIB) $(UNIT_HEADERS) $(wildcard policies/*.c) | $(UNIT_BIN_DIR)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_HELPER_LIB) $(UNIT_CORE_LIB) $(UNIT_LDFLAGS_$*) $(UNIT_LIBS)

# The loader refuses group- or world-writable plugins: keep the fixtures' modes strict whatever
# the umask.
$(FIXTURE_DIR)/%.so: tests/fixtures/%.c $(wildcard tests/fixtures/*.h) include/hakmem_policy.h | $(FIXTURE_DIR)
	$(CC) $(FIXTURE_CFLAGS) -o $@ $<
	chmod go-w $@

$(UNIT_OBJ_DIR) $(UNIT_OBJ_DIR)/core $(UNIT_OBJ_DIR)/builtin $(UNIT_OBJ_DIR)/helpers $(UNIT_BIN_DIR) $(FIXTURE_DIR):
	mkdir -p $@
