# tests/fuzz/fuzz.mk: libFuzzer harnesses (clang, ASan + UBSan) for the config parser
# (hak__config_parse_buffer), the plugin descriptor checks (hak__policy_validate), the ELF check
# of a plugin file before dlopen (hak__elf_check_buffer; seeds: make_elf_seeds.py), the trace
# reader and event decoder (core/trace_format.c), and the parsers of the trim policy `pressure`
# (policies/trim_pressure.c; seeds: the fixtures of tests/fixtures/pressure, written by
# make_pressure_seeds.sh).
#   make fuzz [FUZZ_SECONDS=60]   builds, then runs each harness that long (default 30 s) on a
#                                 working copy of tests/fuzz/corpus; crashes go to tests/fuzz/crashes
#   make fuzz-check               replays the committed corpus and crashes once (seconds)
#   make fuzz-build               only builds build/fuzz/fuzz_*
# Needs clang with its libFuzzer runtime (Debian: clang); checked like the other packages.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -Icore
FUZZ_HEADERS := $(wildcard core/*.h include/*.h)

.PHONY: fuzz fuzz-build fuzz-check fuzz-deps
fuzz-build: $(FUZZ_DIR)/fuzz_config $(FUZZ_DIR)/fuzz_policy $(FUZZ_DIR)/fuzz_elf $(FUZZ_DIR)/fuzz_trace $(FUZZ_DIR)/fuzz_pressure

fuzz-deps: | $(FUZZ_DIR)
	@./tools/need-packages clang libinih-dev

$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.c core/config.c core/trusted_dir.c core/log.c core/kinds.c $(FUZZ_HEADERS) | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_config.c core/config.c core/trusted_dir.c core/log.c core/kinds.c $(patsubst %,policies/%.c,$(BUILTIN_POLICIES)) -DHAK_BUILTIN -linih

$(FUZZ_DIR)/fuzz_policy: tests/fuzz/fuzz_policy.c core/loader.c core/elf_check.c core/config.c core/trusted_dir.c core/log.c core/kinds.c $(FUZZ_HEADERS) | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_policy.c core/loader.c core/elf_check.c core/config.c core/trusted_dir.c core/log.c core/kinds.c $(patsubst %,policies/%.c,$(BUILTIN_POLICIES)) -DHAK_BUILTIN -linih -ldl

$(FUZZ_DIR)/fuzz_elf: tests/fuzz/fuzz_elf.c core/elf_check.c $(FUZZ_HEADERS) | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_elf.c core/elf_check.c

$(FUZZ_DIR)/fuzz_trace: tests/fuzz/fuzz_trace.c core/trace_format.c $(FUZZ_HEADERS) | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_trace.c core/trace_format.c

$(FUZZ_DIR)/fuzz_pressure: tests/fuzz/fuzz_pressure.c policies/trim_pressure.c include/hakmem_policy.h | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_pressure.c

$(FUZZ_DIR):
	mkdir -p $@

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_DIR)

fuzz-check: fuzz-build
	tests/fuzz/run.sh replay $(FUZZ_DIR)
