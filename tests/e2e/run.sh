#!/usr/bin/env bash
# End-to-end runner: runs each test program (and some real programs) in its own process with
# LD_PRELOAD=libhakmem.so under the shipped configurations, and prints PASS/FAIL/SKIP per test
# and a final "N passed, M failed, K skipped" line; exits non-zero if anything failed.
#
# Usage: tests/e2e/run.sh [BINDIR]          (BINDIR defaults to build/tests/e2e)
# Environment:
#   HAKMEM_LIB=path     library to preload (default build/libhakmem.so)
#   E2E_PRELOAD=none    run everything under plain glibc, to check the tests themselves
#   E2E_FILTER=regex    only tests whose name (e.g. "api[option-f]") matches
#   E2E_CONFS="..."     configurations to use instead of the defaults below
#   E2E_KEEP=1          keep the logs of passing tests too (kept anyway when a test fails)
# Only the program under test is preloaded; this script, timeout, env and python3 are not.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BIN=$(cd "${1:-build/tests/e2e}" 2>/dev/null && pwd) || { echo "no test binaries in ${1:-build/tests/e2e}: run make first" >&2; exit 2; }
LIB=${HAKMEM_LIB:-build/libhakmem.so}
[[ $LIB == /* ]] || LIB=$ROOT/$LIB
# One log folder per run (others may run the suite in the same checkout at the same time);
# removed at the end when everything passed, unless E2E_KEEP=1.
LOGS=$(mktemp -d "$BIN/logs.XXXXXX") || exit 2
PY=python3
command -v "$PY" >/dev/null || { echo "python3 is needed by the e2e runner" >&2; exit 2; }

if [[ ${E2E_PRELOAD:-} == none ]]; then
    MODE=glibc; why_glibc="E2E_PRELOAD=none"
elif [[ -f $LIB ]]; then
    MODE=hakmem
else
    MODE=glibc; why_glibc="$LIB not built"
fi

# Work on a snapshot of the library, its plugins and the configurations, laid out as in the
# checkout (conf/*.ini name ../build/policies), so that a rebuild during the run changes nothing.
CONFDIR=$ROOT/conf
if [[ $MODE == hakmem ]]; then
    SNAP=$LOGS/snapshot
    mkdir -p "$SNAP/build" "$SNAP/conf"
    cp "$LIB" "$SNAP/build/libhakmem.so" || exit 2
    [[ -d $ROOT/build/policies ]] && cp -r "$ROOT/build/policies" "$SNAP/build/policies"
    cp "$ROOT"/conf/*.ini "$SNAP/conf/" 2>/dev/null
    chmod -R go-w "$SNAP"
    echo "e2e: preloading a copy of $LIB (with build/policies and conf/) from $SNAP"
    LIB=$SNAP/build/libhakmem.so
    CONFDIR=$SNAP/conf
fi

pass=0 failn=0 skipn=0
failed=()

say_pass() { pass=$((pass + 1)); echo "PASS $1${2:+ ($2)}"; [[ ${E2E_KEEP:-} == 1 ]] || rm -f "$LOGS/$1".*; }
say_fail() { failn=$((failn + 1)); failed+=("$1"); echo "FAIL $1 ($2)"; }
say_skip() { skipn=$((skipn + 1)); echo "SKIP $1 ($2)"; }
wanted()   { [[ -z ${E2E_FILTER:-} || $1 =~ $E2E_FILTER ]]; }

# Configurations only some tests use (not shipped, so not in "all"), written into the log folder.
TESTCONF=$LOGS/test-conf
mkdir -p "$TESTCONF"
printf '; large_aging: trim passes every 20 ms\n[trim]\npolicy = idle\nidle_ms = 20\n' >"$TESTCONF/idle-20ms.ini"
# hybrid_switch: the hybrid ownership policy evaluating at every 16th refill or flush, so that a
# short program's traffic is enough for classes to switch.
if [[ $MODE == hakmem ]]; then
    printf '[core]\npolicy_dir = %s\n[ownership]\npolicy = hybrid\nwindow_ms = 0\nwindow_frees = 1024\ndwell = 1\n' \
        "$SNAP/build/policies" >"$TESTCONF/hybrid-eager.ini"
fi
chmod -R go-w "$TESTCONF"

# conf_file NAME: the INI file for a configuration name; "builtin" means no file at all.
conf_file() {
    case $1 in
        builtin) echo "" ;;
        *) if [[ -f $TESTCONF/$1.ini ]]; then echo "$TESTCONF/$1.ini"; else echo "$CONFDIR/$1.ini"; fi ;;
    esac
}

# The environment that puts hakmem under configuration $1 into a program: sets the array PRE.
set_preload() {
    PRE=()
    [[ $MODE == hakmem ]] || return 0
    PRE=(LD_PRELOAD="$LIB" HAKMEM_CONF="$(conf_file "$1")")
}

# Describes an exit status the way timeout(1) reports it.
describe_rc() {
    local rc=$1 t=$2
    if ((rc == 124)); then echo "timed out after ${t}s"
    elif ((rc == 137)); then echo "killed (SIGKILL) after timing out at ${t}s, or out of memory"
    elif ((rc > 128)); then echo "killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null))"
    else echo "exit status $rc"
    fi
}

# repro CONF [VAR=VALUE...] -- PROGRAM ARGS...: prints the command that reruns a failed test
# from the top of the checkout.
repro() {
    local conf=$1 pre=""; shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    if [[ $MODE == hakmem ]]; then
        local file=""
        if [[ -f $TESTCONF/$conf.ini ]]; then file=$TESTCONF/$conf.ini; elif [[ $conf != builtin ]]; then file=conf/$conf.ini; fi
        pre="LD_PRELOAD=${HAKMEM_LIB:-build/libhakmem.so} HAKMEM_CONF=$file "
    fi
    echo "    to reproduce: $pre${envs[*]:+${envs[*]} }${BIN#"$ROOT"/}/$*"
}

# run NAME CONF TIMEOUT STDERR-RULE [VAR=VALUE...] -- PROGRAM ARGS...
# STDERR-RULE: "empty" (hakmem prints nothing unless asked), "any" (checked by the caller),
# or "diag" (at most one line, and it must start with "hakmem:").
# Leaves the output in $LOGS/NAME.out and .err and the status in RC; returns 0 if it passed.
run() {
    local name=$1 conf=$2 t=$3 rule=$4; shift 4
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    local prog=$1; shift
    set_preload "$conf"
    timeout -k 5 "$t" env -u HAKMEM_STATS "${PRE[@]}" "${envs[@]}" "$BIN/$prog" "$@" \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" </dev/null &
    local tpid=$! dog=
    # A watchdog that saves every thread's stack shortly before the timeout kills a hung test
    # (tests/save-stacks.sh: eu-stack, gdb as the fallback, each attach at most 2 s).
    if command -v pgrep >/dev/null && ((t > 10)); then
        (
            exec 2>/dev/null   # no "Terminated" noise when the watchdog is called off
            sleep $((t - 6))
            "$ROOT/tests/save-stacks.sh" "$LOGS/$name.stacks" $tpid 2
        ) &
        dog=$!
    fi
    wait $tpid
    RC=$?
    if [[ -n $dog ]]; then
        pkill -P $dog 2>/dev/null
        kill $dog 2>/dev/null
        wait $dog 2>/dev/null
    fi
    if ((RC != 0)); then
        local first
        first=$(grep -m1 -v '^$' "$LOGS/$name.err" | cut -c1-300)
        [[ -s $LOGS/$name.stacks ]] && first="${first:+$first; }stacks of the hung process in $LOGS/$name.stacks"
        say_fail "$name" "$(describe_rc $RC "$t")${first:+: $first}"
        repro "$conf" "${envs[@]}" -- "$prog" "$@"
        return 1
    fi
    case $rule in
        empty)
            if [[ -s $LOGS/$name.err ]]; then
                say_fail "$name" "exit 0 but stderr is not empty: $(head -n1 "$LOGS/$name.err" | cut -c1-300)"
                repro "$conf" "${envs[@]}" -- "$prog" "$@"
                return 1
            fi ;;
        diag)
            local lines
            lines=$(wc -l <"$LOGS/$name.err")
            if ((lines > 1)) || { ((lines == 1)) && ! grep -q '^hakmem:' "$LOGS/$name.err"; }; then
                say_fail "$name" "exit 0 but stderr has $lines line(s), want at most one 'hakmem:' line: $(head -n1 "$LOGS/$name.err" | cut -c1-300)"
                repro "$conf" "${envs[@]}" -- "$prog" "$@"
                return 1
            fi ;;
    esac
    return 0
}

# simple TEST CONF TIMEOUT [STDERR-RULE] -- PROGRAM ARGS...: a test program that checks itself.
simple() {
    local test=$1 conf=$2 t=$3 rule=empty; shift 3
    if [[ $1 != -- ]]; then rule=$1; shift; fi
    local name="${test}[$conf]"
    wanted "$name" || return 0
    if run "$name" "$conf" "$t" "$rule" "$@"; then
        say_pass "$name" "$(grep -m1 -E "^$test: " "$LOGS/$name.out" | sed "s/^$test: //")"
    fi
}

# check_json FILE ARGS...: validates the stats line hakmem printed; prints a summary or a reason.
check_json() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
js = [l for l in lines if l.startswith('{"policies"')]
if len(js) != 1:
    print("stderr has %d lines starting with {\"policies\", want exactly 1" % len(js)); sys.exit(1)
if len(lines) != 1 and want.get("only") == "1":
    other = [l for l in lines if not l.startswith('{"policies"')]
    print("stderr has %d other line(s): %s" % (len(other), other[0][:200])); sys.exit(1)
try:
    s = json.loads(js[0])
except ValueError as e:
    print("the stats line is not JSON: %s" % e); sys.exit(1)
def get(path):
    v = s
    for k in path.split("."):
        if not isinstance(v, dict) or k not in v:
            raise KeyError(path)
        v = v[k]
    return v
try:
    for kind in ("trim", "superslab", "ownership"):
        n = get("policies.%s.name" % kind)
        if not isinstance(n, str) or not n:
            print("policies.%s.name is %r" % (kind, n)); sys.exit(1)
        get("policies.%s.version" % kind)
        if not isinstance(get("policies.%s.counters" % kind), dict):
            print("policies.%s.counters is not an object" % kind); sys.exit(1)
    # Every key the stats list declares (core/stats.h, via build/tools/stats-keys) is there.
    if "keys" in want:
        for k in open(want["keys"]).read().split():
            v = get(k)
            if not isinstance(v, int) or isinstance(v, bool):
                print("%s is %r, want an integer" % (k, v)); sys.exit(1)
    num = {}
    for k in ("superslabs.mapped", "superslabs.released", "superslabs.live", "superslabs.size_bytes",
              "frees.local", "frees.remote", "mappings"):
        v = get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            print("%s is %r, want a non-negative integer" % (k, v)); sys.exit(1)
        num[k] = v
except KeyError as e:
    print("key %s missing in %s" % (e.args[0], js[0][:300])); sys.exit(1)
m, r, l, size = num["superslabs.mapped"], num["superslabs.released"], num["superslabs.live"], num["superslabs.size_bytes"]
errs = []
if l != m - r:
    errs.append("superslabs.live %d != mapped %d - released %d" % (l, m, r))
if m < 1:
    errs.append("superslabs.mapped is 0 after allocating")
if num["mappings"] < 1:
    errs.append("mappings is 0")
if "size" in want and size != int(want["size"]):
    errs.append("superslabs.size_bytes %d, want %s" % (size, want["size"]))
for kind in ("ownership", "superslab", "trim"):
    if kind in want and get("policies.%s.name" % kind) != want[kind]:
        errs.append("%s policy %r, want %r" % (kind, get("policies.%s.name" % kind), want[kind]))
frees = num["frees.local"] + num["frees.remote"]
if "min_frees" in want and frees < int(want["min_frees"]):
    errs.append("frees.local %d + frees.remote %d < %s frees the program made" % (num["frees.local"], num["frees.remote"], want["min_frees"]))
if "min_remote" in want and num["frees.remote"] < int(want["min_remote"]):
    errs.append("frees.remote %d < %s cross-thread frees the program made" % (num["frees.remote"], want["min_remote"]))
kept = s.get("superslabs", {}).get("empty_kept")
if "max_empty_kept" in want and (not isinstance(kept, int) or kept > int(want["max_empty_kept"])):
    errs.append("superslabs.empty_kept %r after the heap stayed quiet, want at most %s" % (kept, want["max_empty_kept"]))
if "min_empty_kept" in want and (not isinstance(kept, int) or kept < int(want["min_empty_kept"])):
    errs.append("superslabs.empty_kept %r, want at least %s" % (kept, want["min_empty_kept"]))
if "max_live_bytes" in want and r == 0 and l * size > int(want["max_live_bytes"]):
    errs.append("no SuperSlab released and %d live (%d MB): memory is not given back" % (l, l * size >> 20))
if errs:
    print("; ".join(errs)); sys.exit(1)
print("mapped %d, released %d, live %d x %d KB, frees %d local %d remote, %d mappings" %
      (m, r, l, size >> 10, num["frees.local"], num["frees.remote"], num["mappings"]))
EOF
}

# expect_for CONF: what a configuration must show, read from its INI file: the policy named for
# each kind (the built-in default where the file names none) and, for fixed-size SuperSlabs,
# their size. Prints "ownership=.. superslab=.. trim=.. [size=..]".
expect_for() {
    "$PY" - "$(conf_file "$1")" <<'EOF'
import configparser, re, sys
path = sys.argv[1]
pol = {"ownership": "tls", "superslab": "fixed", "trim": "idle"}
size = "2M"
if path:
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=False, interpolation=None)
    cp.read(path)
    for kind in pol:
        if cp.has_option(kind, "policy"):
            pol[kind] = cp.get(kind, "policy").strip()
    if cp.has_option("superslab", "size"):
        size = cp.get("superslab", "size").strip()
out = ["%s=%s" % kv for kv in pol.items()]
m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)[bB]?", size)
if pol["superslab"] == "fixed" and m:
    out.append("size=%d" % (int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]))
# The file names promise some settings: a file that breaks its name's promise is an error.
promise = {"option-f.ini": "ownership=central", "option-g.ini": "ownership=tls", "hybrid.ini": "ownership=hybrid",
           "superslab-1mb.ini": "size=1048576", "trim-eager.ini": "trim=eager", "trim-none.ini": "trim=none"}
p = promise.get(path.rsplit("/", 1)[-1])
if p and p not in out:
    print("%s does not select %s (it selects %s)" % (path, p, " ".join(out)))
    sys.exit(1)
print(" ".join(out))
EOF
}

# stats CONF: HAKMEM_STATS=json prints one valid JSON line; nothing without HAKMEM_STATS;
# HAKMEM_STATS=1 prints a table (not JSON).
stats() {
    local conf=$1 name="stats[$1]" n=10000 summary
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    run "$name" "$conf" 60 any HAKMEM_STATS=json -- stats $n || return 0
    local exp want
    exp=$(expect_for "$conf") || exp=""   # a conf that breaks its name's promise fails loaded[]
    want="only=1 min_frees=$((n + 4 * 65536)) $exp"
    [[ -x $ROOT/build/tools/stats-keys ]] && "$ROOT/build/tools/stats-keys" >"$LOGS/stats-keys.txt" &&
        want+=" keys=$LOGS/stats-keys.txt"
    [[ $want == *ownership=tls* ]] && want+=" min_remote=$((n / 2))"
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" $want) ||
        { say_fail "$name" "HAKMEM_STATS=json: $summary"; repro "$conf" HAKMEM_STATS=json -- stats $n; return 0; }
    run "$name" "$conf" 60 empty -- stats $n || return 0
    run "$name" "$conf" 60 any HAKMEM_STATS=1 -- stats $n || return 0
    if [[ ! -s $LOGS/$name.err ]]; then say_fail "$name" "HAKMEM_STATS=1 printed nothing"; return 0; fi
    if grep -q '^{"policies"' "$LOGS/$name.err"; then say_fail "$name" "HAKMEM_STATS=1 printed JSON, want a table"; return 0; fi
    say_pass "$name" "$summary"
}

# idle CONF: after 16 MB of small blocks come and go and the program stays quiet for 1.5 s,
# idle trim has unmapped every empty SuperSlab, the reserve included; trim none keeps them.
idle() {
    local conf=$1 name="idle[$1]" summary exp want
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    exp=$(expect_for "$conf") || exp=""
    case $exp in
        *trim=idle*) want="max_empty_kept=0" ;;
        *trim=none*) want="min_empty_kept=1" ;;
        *) say_skip "$name" "trim policy of $conf is not idle or none"; return 0 ;;
    esac
    run "$name" "$conf" 60 any HAKMEM_STATS=json -- idle 1.5 || return 0
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" only=1 $want $exp) ||
        { say_fail "$name" "$summary"; repro "$conf" HAKMEM_STATS=json -- idle 1.5; return 0; }
    say_pass "$name" "$summary"
}

# larson CONF: the seed's workload for ~3 s; under hakmem the stats must show memory going back.
larson() {
    local conf=$1 name="larson[$1]" summary
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then
        run "$name" "$conf" 60 empty -- larson 3 && say_pass "$name" "$(sed -n 's/^larson: //p' "$LOGS/$name.out")"
        return 0
    fi
    run "$name" "$conf" 60 any HAKMEM_STATS=json -- larson 3 || return 0
    local exp
    exp=$(expect_for "$conf") || exp=""
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" only=1 max_live_bytes=$((64 << 20)) $exp) ||
        { say_fail "$name" "$summary"; repro "$conf" HAKMEM_STATS=json -- larson 3; return 0; }
    say_pass "$name" "$(sed -n 's/^larson: //p' "$LOGS/$name.out"); $summary"
}

# large_aging CONF: cached large mappings nobody reuses go back within a few trim passes when
# the trim policy runs passes on its own (idle), and stay under "none" until malloc_trim.
# Eager runs passes only while the program calls the allocator: skipped.
large_aging() {
    local conf=$1 name="large_aging[$1]" want=back trim
    wanted "$name" || return 0
    if [[ $MODE == hakmem ]]; then
        trim=$(expect_for "$conf" | sed -n 's/.*trim=\([^ ]*\).*/\1/p')
        case $trim in
            idle) want=back ;;
            none) want=kept ;;
            *) say_skip "$name" "trim policy '$trim' runs no pass while the program is idle"; return 0 ;;
        esac
    fi
    simple large_aging "$conf" 30 -- large_aging "$want"
}

# introspect CONF: mallinfo2, mallinfo, mallopt and malloc_info(1, fp) are checked by the program
# itself; the XML it wrote with malloc_info(0, fp) and the lines of malloc_stats are checked by
# check_introspect.py (xml.dom.minidom) against mallinfo2's figures of the same moment. Runs
# under glibc too: the test follows glibc's shapes.
introspect() {
    local conf=$1 name="introspect[$1]" d summary
    wanted "$name" || return 0
    d=$LOGS/$name.d
    mkdir -p "$d"
    run "$name" "$conf" 60 empty -- introspect "$d" || return 0
    summary=$("$PY" "$ROOT/tests/e2e/check_introspect.py" "$d") ||
        { say_fail "$name" "$summary"; repro "$conf" -- introspect "$d"; return 0; }
    [[ ${E2E_KEEP:-} == 1 ]] || rm -rf "$d"
    say_pass "$name" "$summary"
}

# loaded CONF: the preload took effect and the configuration picked the expected policies.
loaded() {
    local conf=$1 name="loaded[$1]"
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    if [[ $conf != builtin && ! -f $(conf_file "$conf") ]]; then say_fail "$name" "conf/$conf.ini is missing"; return 0; fi
    local want own ss trim
    want=$(expect_for "$conf") || { say_fail "$name" "$want"; return 0; }
    own=$(sed -n 's/.*ownership=\([^ ]*\).*/\1/p' <<<"$want")
    ss=$(sed -n 's/.*superslab=\([^ ]*\).*/\1/p' <<<"$want")
    trim=$(sed -n 's/.*trim=\([^ ]*\).*/\1/p' <<<"$want")
    run "$name" "$conf" 30 empty -- loaded "$own" "$ss" "$trim" && say_pass "$name" "$own, $ss, $trim"
}

# unsafe_dir: a plugin (itself 0644, owned by us) in a folder others may write to, or below such
# a folder, is refused with exactly one line naming that folder, and the program runs on the
# built-ins; the same layout with 0755 folders loads the plugin. Folders: 0777, 0775, 1777 (sticky,
# like /tmp: refused too), a 0755 folder inside a 0777 one.
unsafe_dir() {
    local spec case mode pmode name own line base=$LOGS/unsafe-dir
    if [[ $MODE != hakmem ]]; then wanted "unsafe_dir[glibc]" && say_skip "unsafe_dir[glibc]" "hakmem only; $why_glibc"; return 0; fi
    for spec in w0777:0777:0755 g0775:0775:0755 sticky1777:1777:0755 parent0777:0755:0777 safe0755:0755:0755; do
        IFS=: read -r case mode pmode <<<"$spec"
        name="unsafe_dir[$case]"
        wanted "$name" || continue
        mkdir -p "$base/$case/parent/plugins"
        cp "$SNAP/build/policies/ownership_central.so" "$base/$case/parent/plugins/"
        chmod 644 "$base/$case/parent/plugins/ownership_central.so"
        chmod "$mode" "$base/$case/parent/plugins"
        chmod "$pmode" "$base/$case/parent"
        printf '[core]\npolicy_dir = %s\n[ownership]\npolicy = central\n' "$base/$case/parent/plugins" >"$TESTCONF/unsafe-$case.ini"
        chmod 600 "$TESTCONF/unsafe-$case.ini"
        own=tls
        [[ $case == safe* ]] && own=central
        run "$name" "unsafe-$case" 30 any -- loaded "$own" fixed idle || continue
        line=$(head -n1 "$LOGS/$name.err")
        local folder=$base/$case/parent/plugins
        [[ $case == parent* ]] && folder=$base/$case/parent
        if [[ $case == safe* ]]; then
            if [[ -s $LOGS/$name.err ]]; then say_fail "$name" "the plugin in 0755 folders did not load cleanly: $line"
            else say_pass "$name" "central loaded from 0755 folders"; fi
        elif [[ $(wc -l <"$LOGS/$name.err") != 1 ]]; then say_fail "$name" "$(wc -l <"$LOGS/$name.err") stderr lines, want exactly one"
        elif [[ $line != "hakmem: "*"policy 'central': "*"folder "*"${folder: -40} is "*"-writable (mode "*"; using built-in 'tls'" ]]; then
            say_fail "$name" "the line does not name the folder ${folder: -40} and its mode: $line"
        else say_pass "$name" "${line##*ownership_central.so: }"
        fi
    done
}

# ---- real programs: the same commands under glibc and under hakmem give the same results ----
REAL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-e2e.XXXXXX")
trap 'rm -rf "$REAL_TMP"' EXIT

# Each real_* function runs its commands through "${RUNP[@]}" (a timeout, then the preload or
# nothing) in the directory $W, and prints what must match between the two runs.
real_python() {
    "${RUNP[@]}" env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PYBIN" -c '
import hashlib, json, collections, random, re, gc
random.seed(7)
d = {}
for i in range(120000):
    k = "key%d-%s" % (i, "x" * (i % 37))
    d[k] = [i, str(i) * (i % 5), {"v": i % 97}]
for i in range(0, 120000, 3):
    del d["key%d-%s" % (i, "x" * (i % 37))]
words = ["".join(random.choices("abcdefghij", k=random.randint(1, 12))) for _ in range(100000)]
c = collections.Counter(words)
s = " ".join(sorted(words))
parts = re.split(r"a+", s)
big = [list(range(i % 100)) for i in range(30000)]
t = tuple(x * 2 for l in big for x in l)
gc.collect()
h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
h.update(s.encode()); h.update(repr(c.most_common(50)).encode()); h.update(repr(len(parts)).encode())
h.update(repr(sum(t)).encode())
print(len(d), len(c), len(parts), sum(t), h.hexdigest())
'
}

real_sort() {
    local in=$REAL_TMP/sort-input.txt
    [[ -s $in ]] || "$PY" -c '
import random
random.seed(11)
c = "qwertyuiopasdfgh"
for i in range(200000):
    print("%s\t%d\t%s" % ("".join(random.choices(c, k=random.randint(3, 20))), random.randint(-10**9, 10**9), "z" * random.randint(0, 60)))
' >"$in"
    "${RUNP[@]}" env LC_ALL=C sort -S 32M "$in" | sha256sum
    "${RUNP[@]}" env LC_ALL=C sort --parallel=2 -S 8M -t "$(printf '\t')" -k2,2n -k1,1 "$in" | sha256sum
    "${RUNP[@]}" env LC_ALL=C sort -u -k3 "$in" | wc -l
}

real_gcc() {
    {
        echo '#include <stdio.h>'
        for i in $(seq 1 300); do
            echo "static long f$i(long x) { long s = 0; for (long k = 0; k < x % 17 + $i; k++) s += (k * $i) ^ (s >> 3); return s; }"
        done
        echo 'int main(void) { long t = 0;'
        for i in $(seq 1 300); do echo "  t += f$i($i);"; done
        printf '%s\n' '  printf("%ld\n", t); return 0; }'
    } >"$W/prog.c"
    (cd "$W" && "${RUNP[@]}" gcc -O2 -g -c prog.c -o prog.o) || echo "gcc -c failed"
    (cd "$W" && "${RUNP[@]}" gcc prog.o -o prog) || echo "gcc link failed"
    sha256sum <"$W/prog.o"
    "$W/prog"
}

real_git() {
    local g=("${RUNP[@]}" env HOME="$W" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=e2e GIT_AUTHOR_EMAIL=e2e@example.invalid
             GIT_COMMITTER_NAME=e2e GIT_COMMITTER_EMAIL=e2e@example.invalid
             GIT_AUTHOR_DATE="2020-01-01T00:00:00Z" GIT_COMMITTER_DATE="2020-01-01T00:00:00Z"
             git -C "$W/repo" -c init.defaultBranch=main -c gc.autoDetach=false)
    mkdir -p "$W/repo"
    "${g[@]}" init -q
    for i in $(seq 1 300); do
        mkdir -p "$W/repo/d$((i % 17))"
        seq "$i" $((i * 50)) >"$W/repo/d$((i % 17))/f$i.txt"
    done
    "${g[@]}" add .
    "${g[@]}" commit -q -m "first"
    for i in $(seq 1 300 | awk 'NR % 7 == 0'); do echo "change $i" >>"$W/repo/d$((i % 17))/f$i.txt"; done
    "${g[@]}" commit -q -a -m "second"
    "${g[@]}" rev-parse HEAD HEAD~1
    "${g[@]}" log --stat --format=%H:%s | sha256sum
    "${g[@]}" gc -q
    "${g[@]}" fsck --strict --no-progress 2>&1
    "${g[@]}" count-objects -v | grep -E '^(count|in-pack|packs):'
}

# real NAME CONF FUNC: runs FUNC under glibc, then under hakmem (same directory, same commands),
# and compares what they printed, on stdout and stderr, and their exit status.
real() {
    local test=$1 conf=$2 func=$3 name="$1[$2]"
    wanted "$name" || return 0
    local t=120 W="$REAL_TMP/$test" ref="$LOGS/$test.glibc"
    # The glibc reference run is made once per test and shared by the configurations.
    if [[ ! -f $ref.rc ]]; then
        RUNP=(timeout -k 5 "$t")
        rm -rf "$W"; mkdir -p "$W"
        (set -o pipefail; "$func") >"$ref.out" 2>"$ref.err"
        echo $? >"$ref.rc"
    fi
    local rc_ref
    rc_ref=$(cat "$ref.rc")
    set_preload "$conf"
    RUNP=(timeout -k 5 "$t" env -u HAKMEM_STATS "${PRE[@]}")
    rm -rf "$W"; mkdir -p "$W"
    (set -o pipefail; "$func") >"$LOGS/$name.out" 2>"$LOGS/$name.err"
    local rc=$?
    if ((rc != rc_ref)); then
        say_fail "$name" "$(describe_rc $rc $t) under ${MODE}, $(describe_rc "$rc_ref" "$t") under glibc: $(head -n1 "$LOGS/$name.err" | cut -c1-200)"
    elif ! cmp -s "$ref.out" "$LOGS/$name.out"; then
        say_fail "$name" "output differs from glibc's: $(diff "$ref.out" "$LOGS/$name.out" | grep -m1 '^[<>]' | cut -c1-200)"
    elif ! cmp -s "$ref.err" "$LOGS/$name.err"; then
        say_fail "$name" "stderr differs from glibc's: $(diff "$ref.err" "$LOGS/$name.err" | grep -m1 '^[<>]' | cut -c1-200)"
    elif ((rc != 0)); then
        say_fail "$name" "fails under glibc too: $(describe_rc $rc $t): $(head -n1 "$LOGS/$name.err" | cut -c1-200)"
    else
        say_pass "$name" "$(head -c 60 "$LOGS/$name.out" | head -n1)"
        return 0
    fi
    echo "    to reproduce: E2E_FILTER='^$test\[$conf\]' E2E_KEEP=1 tests/e2e/run.sh (see $func in tests/e2e/run.sh)"
}

# hybrid_switch: under the hybrid ownership policy, threads that free each other's blocks
# (xthread's ring) move size classes to Option F, and the stats say so per class: the model
# (0 G, 1 F), the switches, the last window's cross-thread share.
hybrid_switch() {
    local name="hybrid_switch[hybrid-eager]" summary
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    run "$name" hybrid-eager 90 any HAKMEM_STATS=json -- xthread || return 0
    summary=$("$PY" - "$LOGS/$name.err" <<'EOF'
import json, sys
js = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if l.startswith('{"policies"')]
if len(js) != 1:
    print("want one stats line, found %d" % len(js)); sys.exit(1)
own = json.loads(js[0])["policies"]["ownership"]
c = own.get("counters", {})
if own.get("name") != "hybrid":
    print("ownership policy %r, want 'hybrid'" % own.get("name")); sys.exit(1)
for k in ("class_model", "switches", "remote_share"):
    if not isinstance(c.get(k), list) or len(c[k]) < 2:
        print("counters.%s is %r, want one entry per size class" % (k, c.get(k))); sys.exit(1)
for k in ("pops", "pushes", "evaluations"):
    if not isinstance(c.get(k), int):
        print("counters.%s is %r, want an integer" % (k, c.get(k))); sys.exit(1)
switched = [i for i, n in enumerate(c["switches"]) if n > 0]
if not switched:
    print("no class switched (remote_share %s)" % c["remote_share"]); sys.exit(1)
if any(m not in (0, 1) for m in c["class_model"]):
    print("class_model %s, want 0 or 1 per class" % c["class_model"]); sys.exit(1)
if c["evaluations"] < 1 or max(c["remote_share"]) < 50:
    print("evaluations %d, highest share %d%%" % (c["evaluations"], max(c["remote_share"]))); sys.exit(1)
print("%d classes switched, %d switches, %d now F, %d evaluations, %d batches popped" %
      (len(switched), sum(c["switches"]), sum(c["class_model"]), c["evaluations"], c["pops"]))
EOF
    ) || { say_fail "$name" "$summary"; repro hybrid-eager HAKMEM_STATS=json -- xthread; return 0; }
    say_pass "$name" "$summary"
}

# ---- the plan ----
PYBIN=/usr/bin/python3
[[ -x $PYBIN ]] || PYBIN=$(command -v python3)
# Every shipped configuration, plus "builtin" (no file at all: the compiled-in defaults).
ALL="builtin $(for f in "$CONFDIR"/*.ini; do [[ -f $f ]] && basename "$f" .ini; done | tr '\n' ' ')"
if [[ $MODE == hakmem ]]; then
    c_all=${E2E_CONFS:-$ALL}
    c_threads=${E2E_CONFS:-"builtin option-g option-f hybrid"}
    c_some=${E2E_CONFS:-"builtin option-f"}
    c_ss=${E2E_CONFS:-"builtin superslab-1mb"}
    c_maps=${E2E_CONFS:-"builtin option-f superslab-1mb"}
    c_aging=${E2E_CONFS:-"builtin idle-20ms trim-none"}
else
    echo "e2e: running under plain glibc ($why_glibc); hakmem-only tests are skipped"
    c_all=glibc c_threads=glibc c_some=glibc c_ss=glibc c_maps=glibc c_aging=glibc
fi

for c in $c_all; do loaded "$c"; done
for c in $c_all; do simple api "$c" 60 -- api; done
for c in $c_all; do introspect "$c"; done
for c in $c_threads; do simple xthread "$c" 90 -- xthread; done
for c in $c_threads; do simple threads "$c" 60 -- threads; done
for c in $c_threads; do simple fork "$c" 120 -- fork; done
for c in $c_some; do simple rlimit "$c" 60 diag -- rlimit; done
for c in $c_ss; do simple large "$c" 90 -- large; done
for c in $c_aging; do large_aging "$c"; done
for c in $c_maps; do simple maps "$c" 90 -- maps; done
for c in $c_all; do
    if [[ $MODE == hakmem ]]; then simple accounting "$c" 60 -- accounting
    else wanted "accounting[$c]" && say_skip "accounting[$c]" "hakmem only; $why_glibc"; fi
done
unsafe_dir
if [[ $MODE == hakmem ]]; then simple hakapi builtin 30 -- hakapi
else wanted "hakapi[glibc]" && say_skip "hakapi[glibc]" "hakmem only; $why_glibc"; fi
for c in $c_all; do stats "$c"; done
for c in $c_all; do idle "$c"; done
# Blocks freed to a thread that then sleeps go back (trim passes reclaim for it): idle trim only.
for c in ${E2E_CONFS:-builtin hakmem option-g option-f hybrid superslab-1mb}; do
    if [[ $MODE == hakmem ]]; then simple idle_owner "$c" 60 -- idle_owner 10
    else wanted "idle_owner[$c]" && say_skip "idle_owner[$c]" "hakmem only; $why_glibc"; fi
done
for c in $c_all; do larson "$c"; done
hybrid_switch
for c in $c_some; do
    real python "$c" real_python
    real sort "$c" real_sort
    real gcc "$c" real_gcc
    if command -v git >/dev/null; then real git "$c" real_git; else wanted "git[$c]" && say_skip "git[$c]" "git not installed"; fi
done

if ((failn > 0)); then
    echo "failed: ${failed[*]} (logs in $LOGS)"
elif [[ ${E2E_KEEP:-} != 1 ]]; then
    rm -rf "$LOGS"
fi
echo "$pass passed, $failn failed, $skipn skipped"
((failn == 0))
