#!/usr/bin/env bash
# deb.sh DEB: checks the Debian package `make deb` built.
#   - lintian reports no error (warnings and notes are listed);
#   - as root only (it changes the machine; CI runs as root): `dpkg -i`, then the installed
#     files (where they are, root-owned, not writable by group or others, /etc/hakmem.ini a
#     conffile), `hakmem -c /etc/hakmem.ini -- prog`, `hakmem policies` listing the installed
#     plugins, `hakmem check`, the man pages, pkg-config and a program linked with -lhakmem;
#     then `dpkg -r` (the conffile stays), `dpkg --purge` (it goes), and no file left behind:
#     the file lists of /etc, /usr and /var/lib/dpkg/info before and after are the same.
# While the package is installed, /etc/hakmem.ini exists, and every program on this machine
# that runs hakmem without HAKMEM_CONF reads it (its keys are commented out: the built-in
# defaults run, as without it). The window is kept short: everything that can be prepared
# before `dpkg -i` is, and a trap purges the package and removes the file on any exit.
# Refuses to run (SKIP) when hakmem is already installed or /etc/hakmem.ini exists: neither
# is this test's to remove.
#
#   tests/e2e/deb.sh build/hakmem_0.1.0_amd64.deb      (make test-deb builds it first)
# Prints PASS/FAIL/SKIP lines and "N passed, M failed"; exits 1 on a failure.
set -u
DEB=${1:?usage: deb.sh path/to/hakmem_VERSION_ARCH.deb}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ $DEB == /* ]] || DEB=$PWD/$DEB
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
unset HAKMEM_CONF HAKMEM_STATS HAKMEM_LIB LD_PRELOAD

pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "${WHY:-command failed}"; fi; WHY=; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }
WHY=

[ -f "$DEB" ] || { bad "package" "$DEB does not exist (make deb)"; finish; }
# Not under /tmp: the INI files written here must pass hakmem's folder check, which refuses any
# folder group or others can write to (/tmp's sticky bit included). build/ is as safe as the
# checkout (.ci/run makes sure it is).
mkdir -p "$ROOT/build/tests" && T=$(mktemp -d "$ROOT/build/tests/deb.XXXXXX") || exit 2
chmod 755 "$T"
why=$("$ROOT/tools/safe-folder" "$T") || echo "deb.sh: $why (the INI checks below will fail)"

# ---- lintian ------------------------------------------------------------------------------
if command -v lintian >/dev/null; then
	lintian --pedantic --display-info "$DEB" >"$T/lintian" 2>"$T/lintian.err"
	errs=$(grep '^E: ' "$T/lintian")
	WHY="$errs $(grep -v 'running with root privileges' "$T/lintian.err")"
	check "lintian: no error" test -z "$errs"
	grep -E '^[WIP]: ' "$T/lintian" | sed 's/^/    lintian: /'
else
	bad "lintian" "not installed (apt-get install lintian)"
fi

# ---- the package's own facts (no install needed) --------------------------------------------
TRIPLET=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
L=/usr/lib/$TRIPLET
NPLUGINS=$(ls "$ROOT"/policies/*.c | wc -l)
dpkg-deb -c "$DEB" >"$T/contents"
for want in "./etc/hakmem.ini" "./usr/bin/hakmem" ".$L/libhakmem.so.0" ".$L/libhakmem.so -> libhakmem.so.0" \
	".$L/pkgconfig/hakmem.pc" "./usr/include/hakmem.h" "./usr/include/hakmem_policy.h" "./usr/include/hakmem_batch_queue.h" \
	"./usr/share/man/man7/hakmem.7.gz" "./usr/share/man/man5/hakmem.ini.5.gz" "./usr/share/doc/hakmem/copyright"; do
	WHY="not in dpkg-deb -c"; check "the package holds ${want#.}" grep -qF " $want" "$T/contents"
done
n=$(grep -c " \.$L/hakmem/[a-z]*_[a-z]*\.so\$" "$T/contents")
WHY="$n plugins in $L/hakmem, $NPLUGINS sources"; check "the package holds every plugin in $L/hakmem ($NPLUGINS)" test "$n" = "$NPLUGINS"
mode=$(awk '$2 != "root/root"' "$T/contents")
WHY="$mode"; check "every file in the package is root/root" test -z "$mode"
mode=$(awk '$1 !~ /^l/ && (substr($1, 6, 1) == "w" || substr($1, 9, 1) == "w")' "$T/contents")
WHY="$mode"; check "no file in the package is writable by group or others" test -z "$mode"
WHY="$(dpkg-deb -f "$DEB" Depends)"; check "Depends names libinih1 (from the shlibs)" grep -q libinih1 <<<"$(dpkg-deb -f "$DEB" Depends)"

# ---- the install test: root only ---------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
	echo "SKIP install test: needs root (dpkg -i installs into /usr and /etc); CI runs it as root"
	rm -rf "$T"
	finish
fi
if dpkg-query -W -f='${Status}' hakmem 2>/dev/null | grep -qv 'not-installed'; then
	echo "SKIP install test: a hakmem package is already on this machine ($(dpkg-query -W -f='${Version} ${Status}' hakmem)); not touching it"
	rm -rf "$T"
	finish
fi
if [ -e /etc/hakmem.ini ] || [ -L /etc/hakmem.ini ]; then
	echo "SKIP install test: /etc/hakmem.ini exists and belongs to no hakmem package; not replacing it"
	rm -rf "$T"
	finish
fi

cleanup() {
	if dpkg-query -W -f='${Status}' hakmem 2>/dev/null | grep -qv 'not-installed'; then
		dpkg --purge hakmem >/dev/null 2>&1 || echo "deb.sh: dpkg --purge hakmem FAILED: remove it by hand" >&2
	fi
	rm -f /etc/hakmem.ini # not there before (checked above): never left behind
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# dpkg waits for nobody: when apt or dpkg runs elsewhere, try again for a while.
dpkg_retry() {
	local i out
	for i in $(seq 1 60); do
		out=$("$@" 2>&1) && { printf '%s\n' "$out"; return 0; }
		grep -qiE 'lock|locked' <<<"$out" || { printf '%s\n' "$out"; return 1; }
		sleep 2
	done
	printf '%s\n' "$out"
	return 1
}

# Everything that does not need the package is made before it goes in.
snapshot() {
	{ find /etc /usr -xdev 2>/dev/null; find /var/lib/dpkg/info -name 'hakmem*' 2>/dev/null; } | sort
}
snapshot >"$T/before"
cat >"$T/alloc.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
	void *v[10000];
	for (int i = 0; i < 10000; i++)
		if (!(v[i] = malloc(16 + i % 500)))
			return 1;
	for (int i = 0; i < 10000; i++)
		free(v[i]);
	Dl_info di;
	void *f = dlsym(RTLD_DEFAULT, "hak_stats_print");
	printf("hakmem=%s\n", f && dladdr(f, &di) ? di.dli_fname : "no");
	return 0;
}
EOF
cat >"$T/linked.c" <<'EOF'
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
	free(malloc(100));
	printf("ownership=%s\n", hak_policy_name("ownership"));
	return 0;
}
EOF
cc -o "$T/alloc" "$T/alloc.c" -ldl 2>"$T/cc.err" || bad "compile the test program" "$(cat "$T/cc.err")"

# ---- install ----------------------------------------------------------------------------------
start=$(date +%s.%N)
if ! out=$(dpkg_retry dpkg -i "$DEB"); then
	bad "dpkg -i $(basename "$DEB")" "$out"
	finish
fi
ok "dpkg -i $(basename "$DEB")"

dpkg -L hakmem | sort >"$T/files"
badown=$(while read -r f; do [ -e "$f" ] || [ -L "$f" ] || continue; stat -c '%U:%G %n' "$f"; done <"$T/files" | grep -v '^root:root ')
WHY="$badown"; check "every installed path is owned by root:root" test -z "$badown"
badmode=$(while read -r f; do [ -L "$f" ] && continue; [ -e "$f" ] || continue; find "$f" -maxdepth 0 -perm /022; done <"$T/files")
WHY="$badmode"; check "no installed path is writable by group or others" test -z "$badmode"
WHY="$(dpkg-query -W -f='${Conffiles}' hakmem)"; check "/etc/hakmem.ini is a conffile" grep -q '^ /etc/hakmem.ini ' <<<"$(dpkg-query -W -f='${Conffiles}\n' hakmem)"
WHY="$(objdump -p "$L/libhakmem.so.0" 2>&1 | grep SONAME)"
check "$L/libhakmem.so.0 carries its soname" sh -c "objdump -p '$L/libhakmem.so.0' | grep -q 'SONAME *libhakmem.so.0'"
WHY="$(ldconfig -p | grep libhakmem)"; check "the dynamic linker's cache knows libhakmem.so.0" sh -c "ldconfig -p | grep -q 'libhakmem.so.0 (.*) => .*/lib/$TRIPLET/libhakmem.so.0'"

out=$(hakmem -c /etc/hakmem.ini --stats=json -- "$T/alloc" 2>"$T/run.err"); rc=$?
WHY="rc=$rc out=$out err=$(head -3 "$T/run.err")"
check "hakmem -c /etc/hakmem.ini -- prog runs prog on the installed library" test "$rc" = 0 -a "$out" = "hakmem=$L/libhakmem.so.0"
WHY="$(cat "$T/run.err")"
check "  and its stats line names the built-in defaults (every key of /etc/hakmem.ini is commented out)" \
	grep -q '"trim":{"name":"idle".*"superslab":{"name":"fixed".*"ownership":{"name":"tls"' "$T/run.err"
printf '[ownership]\npolicy = central\n' >"$T/central.ini"
chmod 644 "$T/central.ini"
hakmem -c "$T/central.ini" --stats=json -- "$T/alloc" >/dev/null 2>"$T/central.err"
WHY="$(cat "$T/central.err")"; check "an INI naming policy = central loads the installed plugin" grep -q '"ownership":{"name":"central"' "$T/central.err"

out=$(hakmem policies 2>&1); rc=$?
rows=$(grep -cE '^(trim|superslab|ownership) +[A-Za-z0-9_-]+\*? +[0-9]+\.[0-9]+\.[0-9]+ +[^ ]' <<<"$out")
WHY="rc=$rc, $rows rows: $out"
check "hakmem policies lists the $NPLUGINS installed plugins of $L/hakmem" sh -c "[ $rc = 0 ] && [ $rows = $NPLUGINS ] && grep -q '^plugins in $L/hakmem:' <<'E'
$out
E"
out=$(hakmem -c /etc/hakmem.ini policies 2>&1); rc=$?
WHY="rc=$rc: $(head -2 <<<"$out")"; check "hakmem -c /etc/hakmem.ini policies: the same folder (policy_dir)" \
	sh -c "[ $rc = 0 ] && grep -q '^plugins in $L/hakmem:' <<'E'
$out
E"
hakmem check /etc/hakmem.ini >"$T/check.out" 2>"$T/check.err"; rc=$?
WHY="rc=$rc $(cat "$T/check.err")"; check "hakmem check /etc/hakmem.ini is clean" test "$rc" = 0 -a ! -s "$T/check.err"
WHY="$(hakmem --version 2>&1 | head -1)"; check "hakmem --version names the package's version" \
	grep -q "$(dpkg-deb -f "$DEB" Version)" <<<"$(hakmem --version 2>&1)"

if command -v man >/dev/null; then
	WHY="$(man -w hakmem 2>&1)"; check "man hakmem finds hakmem(7)" test "$(man -w hakmem 2>/dev/null)" = /usr/share/man/man7/hakmem.7.gz
	WHY="$(man -w hakmem.ini 2>&1)"; check "man hakmem.ini finds hakmem.ini(5)" test "$(man -w hakmem.ini 2>/dev/null)" = /usr/share/man/man5/hakmem.ini.5.gz
	w=$(MANWIDTH=80 man --warnings 7 hakmem 2>&1 >/dev/null)
	WHY="$w"; check "hakmem(7) renders without warnings" test -z "$w"
fi
pc=$(pkg-config --cflags --libs hakmem 2>&1 | sed 's/ *$//')
WHY="got: $pc"; check "pkg-config --cflags --libs hakmem" test "$pc" = "-lhakmem"
WHY="$(pkg-config --variable=plugindir hakmem)"; check "pkg-config plugindir is $L/hakmem" test "$(pkg-config --variable=plugindir hakmem)" = "$L/hakmem"
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Werror -o "$T/linked" "$T/linked.c" $(pkg-config --cflags --libs hakmem) 2>"$T/linked.err"; then
	out=$(HAKMEM_CONF=/etc/hakmem.ini "$T/linked" 2>&1)
	WHY="$out"; check "a program linked with \$(pkg-config --libs hakmem) runs on the installed library" \
		sh -c "[ '$out' = ownership=tls ] && ldd '$T/linked' | grep -q 'libhakmem.so.0 => .*libhakmem.so.0'"
else
	bad "a program builds with \$(pkg-config --cflags --libs hakmem)" "$(head -3 "$T/linked.err")"
fi

# ---- remove, purge ----------------------------------------------------------------------------
out=$(dpkg_retry dpkg -r hakmem); rc=$?
WHY="$out"; check "dpkg -r hakmem" test "$rc" = 0
WHY="status: $(dpkg-query -W -f='${Status}' hakmem 2>&1)"
check "  keeps the conffile /etc/hakmem.ini (config-files)" sh -c "[ -f /etc/hakmem.ini ] && dpkg-query -W -f='\${Status}' hakmem | grep -q config-files"
left=$(while read -r f; do [ "$f" = /etc/hakmem.ini ] && continue; [ -f "$f" ] || [ -L "$f" ] && echo "$f"; done <"$T/files")
WHY="left: $left"; check "  removes every other file" test -z "$left"
out=$(dpkg_retry dpkg --purge hakmem); rc=$?
WHY="$out"; check "dpkg --purge hakmem" test "$rc" = 0
end=$(date +%s.%N)
WHY="$(ls -l /etc/hakmem.ini 2>&1)"; check "  removes /etc/hakmem.ini" test ! -e /etc/hakmem.ini
snapshot >"$T/after"
# Paths another package owns came from someone else's apt-get meanwhile (this machine is shared).
diffs=$(diff "$T/before" "$T/after" | sed -n 's/^[<>] //p' | while read -r f; do
	owner=$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)
	[ -n "$owner" ] && [ "$owner" != hakmem ] && continue
	echo "$f"
done)
WHY="changed: $diffs"; check "after purge, /etc, /usr and /var/lib/dpkg/info hold exactly the files they held before" test -z "$diffs"
awk -v a="$start" -v b="$end" 'BEGIN { printf "    the package was installed for %.1f s\n", b - a }'
finish
