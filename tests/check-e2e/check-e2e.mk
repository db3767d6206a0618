# tests/check-e2e/check-e2e.mk: real programs (python3's test suite, git, perl, sqlite3, redis,
# hakmem's own gcc build) under LD_PRELOAD with every configuration, compared with glibc.
#   make check-e2e                          everything (several minutes; not part of `make test`)
#   make check-e2e CHECK_FILTER='^(sqlite|perl)\['   a subset; CHECK_CONFS="builtin option-f" too
# Missing Debian packages are installed when run as root; otherwise their cases are skipped.

.PHONY: check-e2e
check-e2e: lib plugins
	CHECK_FILTER='$(CHECK_FILTER)' CHECK_CONFS='$(CHECK_CONFS)' tests/check-e2e/run.sh
