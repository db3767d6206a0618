# tests/sanitize.mk: the unit tests again under sanitizers, in their own build folders.
#   make test-asan   every unit test under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan   the threaded ones (remote queues, accounting, thread states, introspection,
#                    the trim plugins' helper thread and Option F's queues on the fake core)
#                    under ThreadSanitizer
# The fixture plugins stay where the tests look for them (build/tests/fixtures).
.PHONY: test-asan test-tsan
SAN_COMMON := -fno-omit-frame-pointer -fno-sanitize-recover=all

test-asan:
	$(MAKE) --no-print-directory test-unit UNIT_OBJ_DIR=$(BUILD)/asan/unit UNIT_BIN_DIR=$(BUILD)/asan/tests/unit \
		UNIT_SAN_FLAGS="-fsanitize=address,undefined $(SAN_COMMON)"

TSAN_TESTS := test_remote test_accounting test_heap test_introspect test_plugin_trim test_plugin_ownership \
              test_plugin_trim_pressure \
              test_plugin_decay
test-tsan:
	$(MAKE) --no-print-directory $(addprefix $(BUILD)/tsan/tests/unit/,$(TSAN_TESTS)) \
		UNIT_OBJ_DIR=$(BUILD)/tsan/unit UNIT_BIN_DIR=$(BUILD)/tsan/tests/unit \
		UNIT_SAN_FLAGS="-fsanitize=thread $(SAN_COMMON)"
	@fail=0; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
		TSAN_OPTIONS=halt_on_error=1 $(BUILD)/tsan/tests/unit/$$t || fail=1; done; exit $$fail
