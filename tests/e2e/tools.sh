#!/usr/bin/env bash
# tools.sh: end-to-end tests of `make install`/`make uninstall` and of the `hakmem` command
# (launcher, `policies`, `check`), the pkg-config file and a program linked with -lhakmem.
# Everything is installed into a temporary folder (removed at the end), with a build of the
# library of its own (INSTALL_BUILD), so the checkout's build/ is only read (plus `make tools`
# and the plugins, which the top build owns). No test preloads hakmem into this shell.
#
#   tests/e2e/tools.sh            prints PASS/FAIL lines and "N passed, M failed"; exit 1 on a failure
#   KEEP=1 tests/e2e/tools.sh     keeps the temporary folder for a look
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Under build/, not /tmp: the installed plugins and INI files must sit in folders nobody else may
# write to, up to / (/tmp, mode 1777, is refused like any world-writable folder).
mkdir -p "$ROOT/build/tests"
T=$(mktemp -d "$ROOT/build/tests/tools.XXXXXX")
[ -n "${KEEP:-}" ] && echo "temporary folder: $T" || trap 'rm -rf "$T"' EXIT
# This script may run inside another make: its own make must not inherit that one's goals or
# variables. PREFIX and DESTDIR from the caller's environment would change the paths tested.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES PREFIX DESTDIR LIBDIR PLUGIN_DIR HAKMEM_CONF HAKMEM_STATS HAKMEM_LIB
export LC_ALL=C

pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
# check NAME COMMAND...: PASS when COMMAND succeeds.
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name" "${WHY:-command failed}"; fi; WHY=; }
WHY=

P=$T/prefix          # the real install
S=$T/stage           # DESTDIR staging of the same PREFIX
MK=(make -C "$ROOT" --no-print-directory -j"$(nproc)" PREFIX="$P" INSTALL_BUILD="$T/obj")
NPLUGINS=$(ls "$ROOT"/policies/*.c | wc -l)
HAK=$P/bin/hakmem
CONF_DIR=$T/conf     # INI files must not be group/world-writable: umask 022 below
umask 022
mkdir -p "$CONF_DIR"

# ---- make install into a DESTDIR, then uninstall ------------------------------------------
# build/bin/hakmem with the checkout's own paths (PREFIX here would change what build/ holds)
make -C "$ROOT" --no-print-directory tools >"$T/tools.log" 2>&1 || { bad "make tools" "$(tail -5 "$T/tools.log")"; }
if ! "${MK[@]}" install DESTDIR="$S" >"$T/install-stage.log" 2>&1; then
	bad "install DESTDIR" "make install failed (last lines below)"
	tail -20 "$T/install-stage.log"
	echo "$pass passed, $fail failed"
	exit 1
fi
ok "install DESTDIR builds and installs"

mapfile -t FILES < <("${MK[@]}" -s install-list)
missing=""
for f in "${FILES[@]}"; do [ -e "$S$f" ] || missing="$missing $f"; done
WHY="missing:$missing"; check "install DESTDIR: every file of install-list is there (${#FILES[@]})" test -z "$missing"
extra=$(cd "$S" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort | comm -23 - <(printf '%s\n' "${FILES[@]}" | sort))
WHY="not in install-list: $extra"; check "install DESTDIR: nothing beyond install-list" test -z "$extra"

WHY="$(ls -l "$S$P/lib/libhakmem.so" 2>&1)"
check "libhakmem.so is a symbolic link to the soname" test "$(readlink "$S$P/lib/libhakmem.so")" = libhakmem.so.0
WHY="soname is $(objdump -p "$S$P/lib/libhakmem.so.0" 2>/dev/null | awk '/SONAME/{print $2}')"
check "libhakmem.so.0 carries the soname" sh -c "objdump -p '$S$P/lib/libhakmem.so.0' | grep -q 'SONAME *libhakmem.so.0'"
n=$(ls "$S$P"/lib/hakmem/*.so 2>/dev/null | wc -l)
WHY="$n plugins installed, $NPLUGINS sources"; check "every plugin installed ($NPLUGINS)" test "$n" -eq "$NPLUGINS"
writable=$(find "$S$P/lib/hakmem" -name '*.so' \( -perm -g+w -o -perm -o+w -o ! -perm 0644 \))
WHY="not 0644: $writable"; check "plugins are mode 0644" test -z "$writable"
WHY="$(stat -c %a "$S$P/bin/hakmem" 2>&1)"; check "bin/hakmem is mode 0755" test "$(stat -c %a "$S$P/bin/hakmem")" = 755
WHY="$(grep -n 'policy_dir *=' "$S$P/etc/hakmem.ini")"
check "etc/hakmem.ini: policy_dir names the installed plugin folder" grep -qx "policy_dir = $P/lib/hakmem" "$S$P/etc/hakmem.ini"
active=$(grep -vE '^[[:space:]]*([;#]|\[|$)' "$S$P/etc/hakmem.ini" | grep -v '^policy_dir = ')
WHY="active: $active"; check "etc/hakmem.ini: every other key is commented out (the built-in defaults run)" test -z "$active"
WHY="$(grep -c '^; [a-z_]* = ' "$S$P/etc/hakmem.ini")"
check "etc/hakmem.ini: the commented keys are all there (stats, map_budget, verbose, policy x3, idle_ms, empty_reserve, size)" \
	test "$(grep -cE '^; (stats|map_budget|verbose|policy|idle_ms|empty_reserve|size) = ' "$S$P/etc/hakmem.ini")" = 9
check "man pages carry the installed paths" grep -q "$P/lib/hakmem" "$S$P/share/man/man7/hakmem.7"
pc=$(PKG_CONFIG_SYSROOT_DIR=$S PKG_CONFIG_PATH=$S$P/lib/pkgconfig pkg-config --cflags --libs hakmem 2>&1 | sed 's/ *$//')
WHY="got: $pc"; check "pkg-config in the DESTDIR (sysroot)" test "$pc" = "-I$S$P/include -L$S$P/lib -lhakmem"

"${MK[@]}" uninstall DESTDIR="$S" >"$T/uninstall-stage.log" 2>&1
left=$(find "$S" \( -type f -o -type l \) 2>/dev/null)
WHY="left: $left"; check "uninstall DESTDIR leaves no file" test -z "$left"
WHY="$(ls -d "$S$P/lib/hakmem" 2>&1)"; check "uninstall removes the plugin folder" test ! -e "$S$P/lib/hakmem"

# ---- the real install (same paths: the build is reused) --------------------------------------
"${MK[@]}" install >"$T/install.log" 2>&1 || { bad "install PREFIX" "make install failed"; tail -20 "$T/install.log"; }
WHY="$(grep -E '^(cc|gcc) ' "$T/install.log" | head -3)"
check "a second install for the same paths compiles nothing" sh -c "! grep -qE '^(cc|gcc) ' '$T/install.log'"
check "PREFIX defaults to /usr/local" sh -c "make -C '$ROOT' --no-print-directory -s install-list | head -1 | grep -qx /usr/local/lib/libhakmem.so.0"

# ---- pkg-config and a program linked with -lhakmem ------------------------------------------
export PKG_CONFIG_PATH=$P/lib/pkgconfig
pc=$(pkg-config --cflags --libs hakmem 2>&1 | sed 's/ *$//')
WHY="got: $pc"; check "pkg-config --cflags --libs hakmem" test "$pc" = "-I$P/include -L$P/lib -lhakmem"
WHY="got: $(pkg-config --variable=plugindir hakmem)"
check "pkg-config plugindir is the installed folder" test "$(pkg-config --variable=plugindir hakmem)" = "$P/lib/hakmem"
cat >"$T/linked.c" <<'EOF'
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
	void *p = malloc(100);
	free(p);
	const char *name = hak_policy_name("ownership"), *version = hak_policy_version("ownership");
	printf("ownership=%s version=%s unknown=%s trimmed=%zu\n", name ? name : "NULL",
	       version ? version : "NULL", hak_policy_name("colour") ? "set" : "NULL", hak_trim());
	hak_stats_print(stdout, 1);
	return 0;
}
EOF
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Wextra -Werror -o "$T/linked" "$T/linked.c" $(pkg-config --cflags --libs hakmem) \
	-Wl,-rpath,"$(pkg-config --variable=libdir hakmem)" 2>"$T/linked.err"; then
	ok "a program builds with \$(pkg-config --cflags --libs hakmem)"
	out=$(HAKMEM_CONF= "$T/linked" 2>&1)
	WHY="output: $out"; check "linked program: hak_policy_name/version answer" grep -q '^ownership=tls version=2.0.0 unknown=NULL' <<<"$out"
	WHY="output: $out"; check "linked program: hak_stats_print(json) prints one JSON line" grep -q '^{"policies":' <<<"$out"
	WHY="$(ldd "$T/linked" | grep hakmem)"; check "linked program loads the installed library" sh -c "ldd '$T/linked' | grep -q '$P/lib/libhakmem.so.0'"
	printf '[ownership]\npolicy = central\n' >"$CONF_DIR/central.ini"
	out=$(HAKMEM_CONF=$CONF_DIR/central.ini "$T/linked" 2>&1)
	WHY="output: $out"
	check "the installed library finds the installed plugins (compiled-in policy_dir)" grep -q '^ownership=central' <<<"$out"
else
	bad "a program builds with \$(pkg-config --cflags --libs hakmem)" "$(head -5 "$T/linked.err")"
fi

# ---- the launcher ---------------------------------------------------------------------------
err=$("$HAK" --stats=json true 2>&1 >/dev/null); rc=$?
WHY="rc=$rc stderr: $err"; check "hakmem --stats=json true: exit 0, one JSON line" sh -c "[ $rc = 0 ] && [ \$(grep -c '^{\"policies\":' <<'E'
$err
E
) = 1 ]"
err=$("$HAK" --stats true 2>&1 >/dev/null)
WHY="stderr: $err"; check "hakmem --stats true: the table" grep -q '^hakmem: superslabs' <<<"$err"
out=$("$HAK" ls "$ROOT" 2>&1); rc=$?
WHY="rc=$rc: $out"; check "hakmem ls runs ls" sh -c "[ $rc = 0 ] && grep -q '^Makefile\$' <<'E'
$out
E"
WHY="$("$HAK" cat /proc/self/maps 2>&1 | grep -c hakmem)"
check "the program runs with libhakmem mapped" sh -c "'$HAK' cat /proc/self/maps | grep -q '$P/lib/libhakmem.so.0'"
out=$(LD_PRELOAD=libfoo.so "$HAK" printenv LD_PRELOAD 2>/dev/null)
WHY="LD_PRELOAD=$out"; check "LD_PRELOAD: libhakmem first, the old value kept" test "$out" = "$P/lib/libhakmem.so.0:libfoo.so"
out=$(LD_PRELOAD=$P/lib/libhakmem.so.0 "$HAK" printenv LD_PRELOAD 2>/dev/null)
WHY="LD_PRELOAD=$out"; check "LD_PRELOAD: not added twice" test "$out" = "$P/lib/libhakmem.so.0"
(cd "$CONF_DIR" && "$HAK" -c central.ini printenv HAKMEM_CONF) >"$T/conf.out" 2>&1
WHY="$(cat "$T/conf.out")"; check "-c FILE sets HAKMEM_CONF to an absolute path" test "$(cat "$T/conf.out")" = "$CONF_DIR/central.ini"
err=$("$HAK" -c "$ROOT/conf/option-f.ini" --stats=json true 2>&1 >/dev/null)
WHY="stderr: $err"; check "hakmem -c conf/option-f.ini: Option F runs" grep -q '"ownership":{"name":"central"' <<<"$err"
"$HAK" sh -c 'exit 7' 2>/dev/null; rc=$?
WHY="rc=$rc"; check "the program's exit status comes back" test "$rc" = 7
"$HAK" /nonexistent/program 2>"$T/e127"; rc=$?
WHY="rc=$rc $(cat "$T/e127")"; check "a missing program: 127 and a message" sh -c "[ $rc = 127 ] && grep -q \"cannot run '/nonexistent/program'\" '$T/e127'"
HAKMEM_LIB=/nonexistent/libhakmem.so "$HAK" true 2>"$T/elib"; rc=$?
WHY="rc=$rc $(cat "$T/elib")"; check "HAKMEM_LIB naming nothing: refused" sh -c "[ $rc = 127 ] && grep -q HAKMEM_LIB '$T/elib'"
out=$(HAKMEM_LIB=$ROOT/build/libhakmem.so "$HAK" printenv LD_PRELOAD 2>/dev/null)
WHY="LD_PRELOAD=$out"; check "HAKMEM_LIB overrides the library" test "$out" = "$ROOT/build/libhakmem.so"
"$HAK" --stats=loud true 2>/dev/null; rc=$?
WHY="rc=$rc"; check "a bad option value: exit 2" test "$rc" = 2
out=$("$HAK" --help 2>&1); rc=$?
WHY="rc=$rc"; check "hakmem --help documents policies, check, --stats, -c, --lib, HAKMEM_LIB" sh -c "[ $rc = 0 ] &&
	for w in 'hakmem policies' 'hakmem check' '--stats' '--config' '--lib' 'HAKMEM_LIB' 'HAKMEM_CONF'; do
		grep -qe \"\$w\" <<'E' || exit 1
$out
E
	done"

# ---- hakmem policies ------------------------------------------------------------------------
out=$("$HAK" policies 2>&1); rc=$?
rows=$(grep -cE '^(trim|superslab|ownership) +[A-Za-z0-9_-]+\*? +[0-9]+\.[0-9]+\.[0-9]+ +[^ ]' <<<"$out")
WHY="rc=$rc, $rows rows: $out"; check "hakmem policies lists the $NPLUGINS installed plugins with versions and summaries" \
	sh -c "[ $rc = 0 ] && [ $rows = $NPLUGINS ] && grep -q '^plugins in $P/lib/hakmem:' <<'E'
$out
E"
for want in 'trim +idle\*' 'trim +none ' 'trim +eager ' 'superslab +fixed\*' 'superslab +adaptive ' 'superslab +example ' 'ownership +tls\*' 'ownership +central '; do
	grep -qE "^$want" <<<"$out" || { bad "hakmem policies shows $want" "missing"; continue; }
done
ok "hakmem policies shows the shipped names"
out=$("$ROOT/build/bin/hakmem" policies 2>&1)
WHY="$out"; check "build/bin/hakmem policies lists build/policies" grep -q "^plugins in $ROOT/build/policies:" <<<"$out"
mkdir -p "$T/plugins" && cp "$P/lib/hakmem/trim_none.so" "$P/lib/hakmem/trim_eager.so" "$T/plugins/" && chmod g+w "$T/plugins/trim_none.so"
out=$("$HAK" policies "$T/plugins" 2>&1); rc=$?
WHY="rc=$rc: $out"; check "a group-writable plugin is listed as REFUSED, exit 1" sh -c "[ $rc = 1 ] && grep -qE '^trim +none +- +REFUSED: .*group-writable' <<'E'
$out
E"
# Damaged plugin files (cut short, empty, another machine, random bytes) are listed as REFUSED with
# the reason; the tool itself never dlopens them (a cut file would kill it with SIGBUS).
mkdir -p "$T/damaged"
head -c 9000 "$P/lib/hakmem/trim_eager.so" >"$T/damaged/trim_cut.so"
: >"$T/damaged/trim_empty.so"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[18:20] = (183 if b[18:20] != bytes([183, 0]) else 62).to_bytes(2, "little"); open(sys.argv[2], "wb").write(b)' \
	"$P/lib/hakmem/trim_eager.so" "$T/damaged/trim_foreign.so"
head -c 20000 /dev/urandom | tr '\177' x >"$T/damaged/trim_random.so"
cp "$P/lib/hakmem/trim_none.so" "$T/damaged/trim_none.so"
chmod 644 "$T"/damaged/*.so
out=$("$HAK" policies "$T/damaged" 2>&1); rc=$?
WHY="rc=$rc: $out"; check "damaged plugins are listed as REFUSED with the reason, exit 1, the good one usable" sh -c "[ $rc = 1 ] &&
	grep -qE '^trim +cut +- +REFUSED: .*trim_cut.so: ELF file of 9000 bytes, expected at least [0-9]+ .*truncated' <<'E' &&
$out
E
	grep -qE '^trim +empty +- +REFUSED: .*trim_empty.so: empty file' <<'E' &&
$out
E
	grep -qE '^trim +foreign +- +REFUSED: .*trim_foreign.so: ELF machine [0-9]+ \([A-Za-z0-9-]+\), expected' <<'E' &&
$out
E
	grep -qE '^trim +random +- +REFUSED: .*trim_random.so: not an ELF file' <<'E' &&
$out
E
	grep -qE '^trim +none +2\.0\.0 ' <<'E' && grep -q '4 plugins in .* refused' <<'F'
$out
E
$out
F"
# A good plugin in a folder others may write to is refused, naming the folder.
mkdir -p "$T/open" && cp "$P/lib/hakmem/trim_none.so" "$T/open/" && chmod 644 "$T/open/trim_none.so" && chmod 777 "$T/open"
out=$("$HAK" policies "$T/open" 2>&1); rc=$?
WHY="rc=$rc: $out"; check "a plugin in a 0777 folder is listed as REFUSED naming the folder, exit 1" sh -c "[ $rc = 1 ] &&
	grep -qE '^trim +none +- +REFUSED: .*folder .*/open is world-writable \(mode 0777\)' <<'E'
$out
E"
chmod 755 "$T/open"

# ---- hakmem check ---------------------------------------------------------------------------
out=$("$ROOT/build/bin/hakmem" check "$ROOT/conf/option-f.ini" 2>"$T/check.err"); rc=$?
WHY="rc=$rc $(cat "$T/check.err") $out"
check "hakmem check conf/option-f.ini: clean, Option F from the plugin" sh -c "[ $rc = 0 ] && [ ! -s '$T/check.err' ] &&
	grep -q '^policy = central\$' <<'E' && grep -q \"^; plugin 'central' 2.0.0 from $ROOT/build/policies/ownership_central.so\" <<'F'
$out
E
$out
F"
for f in "$ROOT"/conf/*.ini; do
	"$ROOT/build/bin/hakmem" check "$f" >/dev/null 2>"$T/c.err"; rc=$?
	WHY="rc=$rc $(cat "$T/c.err")"; check "hakmem check conf/$(basename "$f") is clean" test "$rc" = 0 -a ! -s "$T/c.err"
done
"$HAK" check "$P/etc/hakmem.ini" >/dev/null 2>"$T/c.err"; rc=$?
WHY="rc=$rc $(cat "$T/c.err")"; check "the installed etc/hakmem.ini checks clean" test "$rc" = 0 -a ! -s "$T/c.err"
cat >"$CONF_DIR/bad.ini" <<'EOF'
[core]
stats = loud
[trim]
policy = nosuch
idle_ms = 5
[superslab]
size = 3M
[bogus]
x = 1
[ownership]
policy = central
EOF
out=$("$HAK" check "$CONF_DIR/bad.ini" 2>"$T/bad.err"); rc=$?
errs=$(cat "$T/bad.err")
WHY="rc=$rc"; check "hakmem check of a bad file: exit 1" test "$rc" = 1
WHY="$errs"; check "  reports the bad value with file and line" grep -qF "hakmem: $CONF_DIR/bad.ini:2: [core] stats = 'loud': expected off, table or json; using off" <<<"$errs"
WHY="$errs"; check "  reports the unknown section" grep -qF "hakmem: $CONF_DIR/bad.ini:8: unknown section [bogus]" <<<"$errs"
WHY="$errs"; check "  reports the missing plugin and the fallback" grep -qE "^hakmem: $CONF_DIR/bad.ini:4: policy 'nosuch': .*trim_nosuch.so: cannot open: .*; using built-in 'idle'\$" <<<"$errs"
WHY="$errs"; check "  reports the key the built-in refused" grep -qF "size = '3M': expected 1M or 2M; using built-in 'fixed' with default settings" <<<"$errs"
WHY="$out"; check "  prints the effective policies (built-in instead of nosuch, central from the installed folder)" sh -c "
	grep -q \"^; built-in 'idle' 2.0.0 INSTEAD of 'nosuch'\" <<'E' && grep -q \"^; plugin 'central' 2.0.0 from $P/lib/hakmem/ownership_central.so\" <<'F'
$out
E
$out
F"
printf '[superslab]\npolicy = example\nlarge_from = 8\n' >"$CONF_DIR/example.ini"
"$HAK" check "$CONF_DIR/example.ini" >/dev/null 2>"$T/ex.err"; rc=$?
WHY="rc=$rc $(cat "$T/ex.err")"; check "the example plugin validates its key (large_from = 8 refused)" sh -c "[ $rc = 1 ] && grep -qF \"large_from = '8': expected an integer in [16, 131072]\" '$T/ex.err'"
printf '[superslab]\npolicy = example\nlarge_from = 4096\n' >"$CONF_DIR/example.ini"
out=$("$HAK" check "$CONF_DIR/example.ini" 2>&1); rc=$?
WHY="rc=$rc $out"; check "the example plugin accepts large_from = 4096" sh -c "[ $rc = 0 ] && grep -q '^large_from = 4096\$' <<'E'
$out
E"
"$HAK" check "$CONF_DIR/nonexistent.ini" >/dev/null 2>"$T/ne.err"; rc=$?
WHY="rc=$rc $(cat "$T/ne.err")"; check "hakmem check of a missing file: exit 1 and the reason" sh -c "[ $rc = 1 ] && grep -q 'cannot open: No such file' '$T/ne.err'"

# ---- the man pages render without warnings ----------------------------------------------------
if command -v man >/dev/null; then
	for m in "$P/share/man/man7/hakmem.7" "$P/share/man/man5/hakmem.ini.5"; do
		# wide: the test prefix puts long unbreakable paths into the page (a real PREFIX does not)
		w=$(MANWIDTH=160 man --warnings -l "$m" 2>&1 >/dev/null)
		WHY="$w"; check "man $(basename "$m") renders without warnings" test -z "$w"
	done
fi

# ---- uninstall ------------------------------------------------------------------------------
"${MK[@]}" uninstall >"$T/uninstall.log" 2>&1
left=$(find "$P" \( -type f -o -type l \) 2>/dev/null)
WHY="left: $left"; check "uninstall PREFIX leaves no file" test -z "$left"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
