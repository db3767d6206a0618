# tools/deb.mk: `make deb` builds build/hakmem_<version>_<arch>.deb the Debian way: a copy of the
# source tree (what git tracks plus untracked files it does not ignore; no build/, no .git) in
# $(DEB_WORK), `dpkg-buildpackage -us -uc -b` over its debian/ folder (debhelper compat 13,
# whose rules call `make install`: one install recipe), then the .deb copied into build/.
# `make test-deb` builds it, runs lintian on it and, as root, installs it with dpkg, checks it
# and removes it again (tests/e2e/deb.sh); not part of `make test`: it changes the machine.

DEB_WORK     := $(BUILD)/deb
# dpkg-buildpackage needs build-essential and the Build-Depends; debian/control says
# Rules-Requires-Root: no, so no fakeroot. lintian checks the result.
DEB_TOOLS    := build-essential debhelper dpkg-dev lintian libinih-dev pkg-config
DEB_VERSION  = $(shell dpkg-parsechangelog -l debian/changelog -S Version)
DEB_ARCH     = $(shell dpkg-architecture -qDEB_HOST_ARCH)
DEB_FILE     = $(BUILD)/hakmem_$(DEB_VERSION)_$(DEB_ARCH).deb

.PHONY: deb test-deb deb-deps
deb-deps:
	@./tools/need-packages $(DEB_TOOLS)

deb: deb-deps
	@test "$(DEB_VERSION)" = "$(HAKMEM_VERSION)" || \
		{ echo "deb: debian/changelog says $(DEB_VERSION), HAKMEM_VERSION is $(HAKMEM_VERSION): make them agree" >&2; exit 1; }
	rm -rf '$(DEB_WORK)'
	mkdir -p '$(DEB_WORK)/hakmem-$(DEB_VERSION)'
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
			tar --null -T - -cf - | tar -C '$(DEB_WORK)/hakmem-$(DEB_VERSION)' -xf -; \
	else \
		tar --exclude=./build --exclude=./.git -cf - . | tar -C '$(DEB_WORK)/hakmem-$(DEB_VERSION)' -xf -; \
	fi
	cd '$(DEB_WORK)/hakmem-$(DEB_VERSION)' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -us -uc -b > ../build.log 2>&1 || \
		{ tail -30 ../build.log >&2; echo "deb: dpkg-buildpackage failed; the whole log is $(DEB_WORK)/build.log" >&2; exit 1; }
	cp '$(DEB_WORK)/hakmem_$(DEB_VERSION)_$(DEB_ARCH).deb' '$(DEB_FILE)'
	@echo "deb: wrote $(DEB_FILE) (build log: $(DEB_WORK)/build.log)"

test-deb: deb
	tests/e2e/deb.sh '$(DEB_FILE)'
