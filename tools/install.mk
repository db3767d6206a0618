# tools/install.mk: the `hakmem` command (build/bin/hakmem), `make install` and `make uninstall`.
# Included by the top Makefile after it has set PREFIX, LIBDIR, PLUGIN_DIR, BUILD, SONAME and PLUGINS.
#
# Paths compiled into binaries: the core's default policy folder (PLUGIN_DIR) and, in the
# launcher, where libhakmem.so and the plugins sit relative to bin/. A build folder records
# them in $(BUILD)/paths.stamp, rewritten only when they change, and the objects that embed
# them depend on it: `make PREFIX=/usr` after `make` rebuilds what it must, never silently
# keeps the old folder.
#
# `make install` never reuses the checkout's build/: it builds a second copy of the library and
# of the launcher in $(INSTALL_BUILD) (default build/install) for the install paths, through
# the same rules (a sub-make with BUILD=$(INSTALL_BUILD)), so build/ keeps serving the tests
# while an install for another PREFIX is made. The plugins embed no path and are installed
# from build/policies. To install as root without writing into the checkout as root:
#     make install-build PREFIX=/usr && sudo make install PREFIX=/usr
#
# Targets: tools (build/bin/hakmem), install-build, install, uninstall, install-list.

BINDIR       ?= $(PREFIX)/bin
INCLUDEDIR   ?= $(PREFIX)/include
SYSCONFDIR   ?= $(PREFIX)/etc
MANDIR       ?= $(PREFIX)/share/man
DATADIR      ?= $(PREFIX)/share
LIBEXECDIR   ?= $(PREFIX)/libexec
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL_BUILD ?= $(BUILD)/install
HAKMEM_VERSION ?= 0.1.0
INSTALL      ?= install

# ---- Paths compiled in, and the stamp that records them --------------------------------------

# Where <dir> is as seen from bin/: "../lib" when both sit under PREFIX with bin/ at
# PREFIX/bin, else the absolute path. The launcher then finds a staged (DESTDIR) or moved tree.
hak__from_bin = $(if $(and $(filter $(PREFIX)/bin,$(BINDIR)),$(filter $(PREFIX)/%,$1)),../$(patsubst $(PREFIX)/%,%,$1),$1)

HAK_TOOL_DEFS := -DHAK_PLUGIN_DIR='"$(PLUGIN_DIR)"' -DHAK_LIBDIR='"$(LIBDIR)"' \
                 -DHAK_LIB_FROM_BIN='"$(call hak__from_bin,$(LIBDIR))"' \
                 -DHAK_PLUGIN_DIR_FROM_BIN='"$(call hak__from_bin,$(PLUGIN_DIR))"' \
                 -DHAK_SONAME='"$(SONAME)"' -DHAK_VERSION='"$(HAKMEM_VERSION)"' \
                 -DHAK_REPLAYER_FROM_BIN='"$(call hak__from_bin,$(LIBEXECDIR))/hakmem/hakmem-replay"' \
                 -DHAK_DRIVER_FROM_BIN='"$(call hak__from_bin,$(DATADIR))/hakmem/hakmem_replay.py"'
HAK_PATHS := PLUGIN_DIR=$(PLUGIN_DIR) LIBDIR=$(LIBDIR) BINDIR=$(BINDIR) PREFIX=$(PREFIX) \
             SONAME=$(SONAME) VERSION=$(HAKMEM_VERSION) DATADIR=$(DATADIR) LIBEXECDIR=$(LIBEXECDIR)
HAK_PATHS_STAMP := $(BUILD)/paths.stamp

# Paths go into C strings, shell words and sed replacements: no blanks, quotes, backslashes,
# '|' or '&'. Checked once for the goals that use them.
hak__bad_path = $(or $(word 2,$1),$(findstring ',$1),$(findstring ",$1),$(findstring \,$1),$(findstring |,$1),$(findstring &,$1))
ifneq ($(filter install install-build uninstall install-list tools,$(or $(MAKECMDGOALS),all)),)
$(foreach v,PREFIX DESTDIR LIBDIR PLUGIN_DIR BINDIR INCLUDEDIR SYSCONFDIR MANDIR PKGCONFIGDIR INSTALL_BUILD DATADIR LIBEXECDIR,\
  $(if $(call hak__bad_path,$($(v))),$(error $(v)='$($(v))': blanks, quotes, backslashes, '|' and '&' are not supported in install paths)))
endif

.PHONY: hak__paths_force
$(HAK_PATHS_STAMP): hak__paths_force
	@mkdir -p $(@D)
	@printf '%s\n' '$(HAK_PATHS)' | cmp -s - $@ 2>/dev/null || printf '%s\n' '$(HAK_PATHS)' > $@

# Only config.c expands HAK_PLUGIN_DIR today; every core object depends on the stamp so a
# future use cannot go stale.
$(CORE_OBJ): $(HAK_PATHS_STAMP)

# ---- The `hakmem` command ---------------------------------------------------------------------

# It runs on glibc's malloc: the parser, the loader and the built-in policies are compiled in
# (the built-ins with -DHAK_BUILTIN, which only renames their descriptor), never core/api.c.
# size_class.c gives plugins the real size classes when `hakmem check` calls their init.
HAK_TOOL := $(BUILD)/bin/hakmem
HAK_TOOL_SRC := tools/hakmem.c $(wildcard tools/hakmem_*.c)
HAK_TOOL_CORE := core/config.c core/trusted_dir.c core/loader.c core/elf_check.c core/log.c core/size_class.c \
                core/kinds.c \
                 $(patsubst %,policies/%.c,$(BUILTIN_POLICIES))

# `hakmem replay`'s replayer (tools/replayer.c): the program preloaded with each allocator under
# test. It links the trace reader and the bench programs' probes, never the allocator.
HAK_REPLAYER := $(BUILD)/bin/hakmem-replay
$(HAK_REPLAYER): tools/replayer.c core/trace_format.c core/trace_format.h bench/bench_util.c bench/bench_util.h \
                 | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(OPT) -pthread -Icore -Ibench -o $@ tools/replayer.c core/trace_format.c \
		bench/bench_util.c -ldl -lm

.PHONY: tools
tools: $(HAK_TOOL) $(HAK_REPLAYER)

$(HAK_TOOL): $(HAK_TOOL_SRC) $(HAK_TOOL_CORE) $(wildcard tools/*.h core/*.h include/*.h) \
             $(HAK_PATHS_STAMP) | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(OPT) -Iinclude -Icore -Itools -DHAK_BUILTIN $(HAK_TOOL_DEFS) \
		$(LDFLAGS) -o $@ $(HAK_TOOL_SRC) $(HAK_TOOL_CORE) -linih -ldl

# ---- install / uninstall ----------------------------------------------------------------------

HAK_INST_LIB  := $(INSTALL_BUILD)/libhakmem.so
HAK_INST_TOOL := $(INSTALL_BUILD)/bin/hakmem
HAK_PLUGIN_FILES := $(notdir $(PLUGINS))
HAK_MAN_PAGES := man/hakmem.7 man/hakmem.ini.5

# The library and the launcher for the install paths, in their own build folder.
.PHONY: install-build
install-build: plugins
	@$(MAKE) --no-print-directory BUILD='$(INSTALL_BUILD)' PREFIX='$(PREFIX)' LIBDIR='$(LIBDIR)' \
		PLUGIN_DIR='$(PLUGIN_DIR)' BINDIR='$(BINDIR)' HAKMEM_VERSION='$(HAKMEM_VERSION)' \
		'$(INSTALL_BUILD)/libhakmem.so' '$(INSTALL_BUILD)/bin/hakmem' '$(INSTALL_BUILD)/bin/hakmem-replay'

# Text files get the real paths: the sources carry the defaults for PREFIX=/usr/local (so
# `man -l man/hakmem.7` reads right in a checkout); markers first, so a replacement is never
# matched again by a later rule.
HAK_SED_PATHS := sed -e 's|/usr/local/libexec|@LIBEXECDIR@|g' -e 's|/usr/local/share/hakmem|@DATADIR@/hakmem|g' \
	-e 's|/usr/local/lib/hakmem|@PLUGIN_DIR@|g' -e 's|/usr/local/lib/pkgconfig|@PKGCONFIGDIR@|g' \
	-e 's|/usr/local/lib|@LIBDIR@|g' -e 's|/usr/local/etc|@SYSCONFDIR@|g' -e 's|/usr/local/bin|@BINDIR@|g' \
	-e 's|/usr/local/include|@INCLUDEDIR@|g' -e 's|/usr/local/share/man|@MANDIR@|g' \
	-e 's|@PLUGIN_DIR@|$(PLUGIN_DIR)|g' -e 's|@PKGCONFIGDIR@|$(PKGCONFIGDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@MANDIR@|$(MANDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	-e 's|"hakmem 0\.1\.0"|"hakmem $(HAKMEM_VERSION)"|'

# pkg-config wants libdir and includedir relative to ${prefix} when they are under it.
hak__pc_rel = $(if $(filter $(PREFIX)/%,$1),$${prefix}/$(patsubst $(PREFIX)/%,%,$1),$1)
HAK_SED_PC := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call hak__pc_rel,$(LIBDIR))|g' \
	-e 's|@INCLUDEDIR@|$(call hak__pc_rel,$(INCLUDEDIR))|g' \
	-e 's|@PLUGIN_DIR@|$(call hak__pc_rel,$(PLUGIN_DIR))|g' -e 's|@VERSION@|$(HAKMEM_VERSION)|g'

# The installed configuration: conf/hakmem.ini with every key commented out at its default
# (the built-in defaults are what runs, and stay what runs when a later version changes one),
# except policy_dir, which names the installed plugin folder (the compiled-in one too); the
# installed names in the usage line.
HAK_SED_INI := sed -e 's|^policy_dir *=.*|policy_dir = $(PLUGIN_DIR)|' \
	-e '/^policy_dir /!s|^\([a-z_]*\) *= *|; \1 = |' \
	-e 's|^; hakmem.ini: the reference configuration. Every value below is the built-in default, so this$$|; hakmem.ini: every key below is commented out at its built-in default, so this|' \
	-e 's|^; file changes nothing; copy it and edit.|; file changes nothing; uncomment and edit.|' \
	-e 's|HAKMEM_CONF=conf/hakmem.ini LD_PRELOAD=build/libhakmem.so|HAKMEM_CONF=$(SYSCONFDIR)/hakmem.ini LD_PRELOAD=$(LIBDIR)/$(SONAME)|'

D := $(DESTDIR)
.PHONY: install
install: install-build
	$(INSTALL) -d -m 0755 '$(D)$(LIBDIR)' '$(D)$(PLUGIN_DIR)' '$(D)$(PKGCONFIGDIR)' '$(D)$(INCLUDEDIR)' \
		'$(D)$(BINDIR)' '$(D)$(SYSCONFDIR)' '$(D)$(MANDIR)/man5' '$(D)$(MANDIR)/man7' \
		'$(D)$(DATADIR)/hakmem' '$(D)$(LIBEXECDIR)/hakmem'
	$(INSTALL) -m 0644 '$(HAK_INST_LIB)' '$(D)$(LIBDIR)/$(SONAME)'
	ln -sfn '$(SONAME)' '$(D)$(LIBDIR)/libhakmem.so'
	$(INSTALL) -m 0644 $(PLUGINS) '$(D)$(PLUGIN_DIR)/'
	$(INSTALL) -m 0644 include/hakmem.h include/hakmem_policy.h include/hakmem_batch_queue.h '$(D)$(INCLUDEDIR)/'
	$(HAK_SED_PC) tools/hakmem.pc.in > '$(D)$(PKGCONFIGDIR)/hakmem.pc'
	chmod 0644 '$(D)$(PKGCONFIGDIR)/hakmem.pc'
	$(HAK_SED_INI) conf/hakmem.ini > '$(D)$(SYSCONFDIR)/hakmem.ini'
	chmod 0644 '$(D)$(SYSCONFDIR)/hakmem.ini'
	$(HAK_SED_PATHS) man/hakmem.ini.5 > '$(D)$(MANDIR)/man5/hakmem.ini.5'
	$(HAK_SED_PATHS) man/hakmem.7 > '$(D)$(MANDIR)/man7/hakmem.7'
	chmod 0644 '$(D)$(MANDIR)/man5/hakmem.ini.5' '$(D)$(MANDIR)/man7/hakmem.7'
	$(INSTALL) -m 0755 '$(HAK_INST_TOOL)' '$(D)$(BINDIR)/hakmem'
	$(INSTALL) -m 0755 '$(INSTALL_BUILD)/bin/hakmem-replay' '$(D)$(LIBEXECDIR)/hakmem/hakmem-replay'
	$(INSTALL) -m 0644 tools/hakmem_replay.py bench/run.py '$(D)$(DATADIR)/hakmem/'

# Every file install writes, one per line (for packagers and the uninstall test).
HAK_INSTALLED := $(LIBDIR)/$(SONAME) $(LIBDIR)/libhakmem.so $(addprefix $(PLUGIN_DIR)/,$(HAK_PLUGIN_FILES)) \
	$(INCLUDEDIR)/hakmem.h $(INCLUDEDIR)/hakmem_policy.h $(INCLUDEDIR)/hakmem_batch_queue.h $(PKGCONFIGDIR)/hakmem.pc \
	$(SYSCONFDIR)/hakmem.ini $(MANDIR)/man5/hakmem.ini.5 $(MANDIR)/man7/hakmem.7 $(BINDIR)/hakmem \
	$(LIBEXECDIR)/hakmem/hakmem-replay $(DATADIR)/hakmem/hakmem_replay.py $(DATADIR)/hakmem/run.py
.PHONY: install-list
install-list:
	@printf '%s\n' $(HAK_INSTALLED)

# Removes exactly what install wrote (the plugins by the names this checkout builds), then the
# plugin folder when it is left empty. Shared folders (lib/, include/, man5/...) stay.
.PHONY: uninstall
uninstall:
	rm -f $(addprefix '$(D),$(addsuffix ',$(HAK_INSTALLED)))
	rmdir '$(D)$(PLUGIN_DIR)' '$(D)$(DATADIR)/hakmem' '$(D)$(LIBEXECDIR)/hakmem' 2>/dev/null || true
