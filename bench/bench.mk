# Benchmark lab (included by the top-level Makefile): builds the workload programs into
# build/bench/ against plain libc (the allocator is chosen at run time with LD_PRELOAD) and runs
# them through bench/run.py: `make bench`, `make bench-quick`, `make bench-callgrind`,
# `make bench-larson` (the 60 s Larson targets), `make bench-bursts` (the trim policies' RSS over
# time on bursts of frees and reallocations) and `make demo`.

BENCH_DIR    := $(BUILD)/bench
BENCH_PROGS  := larson prodcons threadchurn sizesweep realloc large falseshare churn mstress bursts
BENCH_BINS   := $(addprefix $(BENCH_DIR)/,$(BENCH_PROGS))
BENCH_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -pthread
BENCH_RUN    := python3 bench/run.py
# Extra runner flags, e.g. `make bench BENCH_ARGS="--repeats 5 --workload larson"`.
BENCH_ARGS   ?=

.PHONY: bench bench-progs bench-quick bench-callgrind bench-larson bench-bursts bench-traces bench-try-lib demo

bench-progs: $(BENCH_BINS)

$(BENCH_BINS): $(BENCH_DIR)/%: bench/%.c bench/bench_util.c bench/bench_util.h | $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ $< bench/bench_util.c -lm

$(BENCH_DIR):
	mkdir -p $@

# The benchmarks still run (glibc and the peers) when the allocator does not build yet;
# the runner then says that build/libhakmem.so is missing.
bench-try-lib:
	@$(MAKE) --no-print-directory all || \
		echo "bench: building build/libhakmem.so FAILED; hakmem columns will be missing" >&2

bench: bench-progs bench-try-lib
	$(BENCH_RUN) full $(BENCH_ARGS)

bench-quick: bench-progs bench-try-lib
	$(BENCH_RUN) quick $(BENCH_ARGS)

bench-callgrind: bench-progs bench-try-lib
	$(BENCH_RUN) callgrind $(BENCH_ARGS)

bench-larson: bench-progs bench-try-lib
	$(BENCH_RUN) larson $(BENCH_ARGS)

bench-bursts: bench-progs bench-try-lib
	$(BENCH_RUN) bursts $(BENCH_ARGS)

# Real programs recorded and replayed under every allocator (also the last section of `make bench`).
bench-traces: bench-progs bench-try-lib
	$(BENCH_RUN) traces $(BENCH_ARGS)

# `make demo`: build everything, then Larson (10 s, 4 threads, 8-128 B, 1024 blocks) under
# glibc and hakmem side by side. Exits non-zero, after showing glibc, if hakmem did not build.
demo: bench-progs
	@$(MAKE) --no-print-directory all || \
		{ echo; echo "demo: building build/libhakmem.so FAILED (errors above); showing glibc only"; \
		  $(BENCH_RUN) demo --alloc glibc; exit 1; }
	@$(BENCH_RUN) demo
