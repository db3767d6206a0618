# hakmem: top-level build. `make` builds the allocator and the policy plugins,
# `make test` runs the cmocka unit tests and the end-to-end tests, `make demo`
# shows hakmem surviving the Larson-style workload beside glibc.
# Sub-parts add their own rules through the *.mk fragments included below.

CC       ?= cc
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror
OPT      ?= -O2 -g
LDFLAGS  ?=  # extra link flags (debian/rules passes dpkg-buildflags' hardening flags)
# HAK_DEBUG=1: internal asserts (HAK_ASSERT), 2: also the expensive invariants (core/base.h).
HAK_DEBUG ?= 0
# FAST_ASM=0: the exported malloc and free in C even on x86-64 (core/alloc_fast.h; default: the
# hand-scheduled asm there, the C elsewhere and in debug builds).
FAST_ASM ?=
CFLAGS_LIB := $(CSTD) $(WARN) $(OPT) -DHAK_DEBUG=$(HAK_DEBUG) $(if $(FAST_ASM),-DHAK_FAST_ASM=$(FAST_ASM)) -fPIC -fvisibility=hidden -ftls-model=initial-exec -fno-tree-slp-vectorize \
              -fno-plt -Iinclude -Icore
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
PLUGIN_DIR ?= $(LIBDIR)/hakmem
BUILD    := build

CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(patsubst core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
# The built-in defaults are compiled into the core from the same sources as their plugins.
BUILTIN_POLICIES := trim_idle superslab_fixed ownership_tls
BUILTIN_OBJ := $(patsubst %,$(BUILD)/core/builtin_%.o,$(BUILTIN_POLICIES))
PLUGIN_SRC := $(wildcard policies/*.c)
PLUGINS    := $(patsubst policies/%.c,$(BUILD)/policies/%.so,$(PLUGIN_SRC))

LIB := $(BUILD)/libhakmem.so
SONAME := libhakmem.so.0

.PHONY: all lib plugins test demo clean deps
all: lib plugins tools

lib: $(LIB)
plugins: $(PLUGINS)

$(BUILD)/core/%.o: core/%.c $(wildcard core/*.h include/*.h) | $(BUILD)/core $(BUILD)/.deps
	$(CC) $(CFLAGS_LIB) -DHAK_PLUGIN_DIR='"$(PLUGIN_DIR)"' -c $< -o $@

$(BUILD)/core/builtin_%.o: policies/%.c include/hakmem_policy.h include/hakmem_batch_queue.h | $(BUILD)/core
	$(CC) $(CFLAGS_LIB) -DHAK_BUILTIN -c $< -o $@

# The library's layout, for small programs' memory (every page of it a program maps is RSS):
# 64 KB segments with the hot code in the first window of the text (core/layout.ld), packed
# relative relocations (fewer pages of .rela.dyn to read), and Debian's libinih.a linked in
# (it is PIC; as a shared library it cost every program four more mappings, 16 KB).
LIB_LAYOUT := -Wl,-z,max-page-size=0x10000 -Wl,-z,pack-relative-relocs -Wl,-T,core/layout.ld
$(LIB): $(CORE_OBJ) $(BUILTIN_OBJ) core/layout.ld
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,-z,now $(LIB_LAYOUT) $(LDFLAGS) -o $@ $(CORE_OBJ) $(BUILTIN_OBJ) \
		-l:libinih.a -lpthread -ldl

$(BUILD)/policies/%.so: policies/%.c include/hakmem_policy.h include/hakmem_batch_queue.h | $(BUILD)/policies
	$(CC) $(CSTD) $(WARN) $(OPT) -fPIC -fvisibility=hidden -Iinclude -shared $(LDFLAGS) -o $@ $<
	chmod go-w $@

$(BUILD)/core $(BUILD)/policies:
	mkdir -p $@

# Debian packages the build, the tests and the demo need: installed when run as root,
# otherwise the exact apt-get line is printed. Checked once per build folder (again when this
# file changes). elfutils: eu-stack, which the test runners use to save a hung test's stacks.
# A Debian package build (debian/rules) passes NEED_PACKAGES=true: dpkg-buildpackage has checked
# its Build-Depends already, and must not install anything.
DEB_PKGS := gcc make pkg-config libinih-dev libcmocka-dev python3 git elfutils procps
NEED_PACKAGES ?= ./tools/need-packages
deps: $(BUILD)/.deps
$(BUILD)/.deps: tools/need-packages Makefile | $(BUILD)/core
	@$(NEED_PACKAGES) $(DEB_PKGS)
	@touch $@

-include tests/tests.mk
-include bench/bench.mk
-include tools/tools.mk
-include tools/install.mk
-include tools/deb.mk

clean:
	rm -rf $(BUILD)
