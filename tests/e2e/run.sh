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
printf '; large_aging: decay within a second\n[core]\npolicy_dir = %s\n[trim]\npolicy = decay\ndecay_ms = 1000\n' \
    "$(dirname "$CONFDIR")/build/policies" >"$TESTCONF/decay-1s.ini"
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
              "frees.local", "frees.remote", "mappings", "threads.live", "threads.parked"):
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
if "threads_live" in want and num["threads.live"] != int(want["threads_live"]):
    errs.append("threads.live %d at exit, want %s (the threads still running)" % (num["threads.live"], want["threads_live"]))
if "min_remote" in want and num["frees.remote"] < int(want["min_remote"]):
    errs.append("frees.remote %d < %s cross-thread frees the program made" % (num["frees.remote"], want["min_remote"]))
kept = s.get("superslabs", {}).get("empty_kept")
if "max_empty_kept" in want and (not isinstance(kept, int) or kept > int(want["max_empty_kept"])):
    errs.append("superslabs.empty_kept %r after the heap stayed quiet, want at most %s" % (kept, want["max_empty_kept"]))
if "min_empty_kept" in want and (not isinstance(kept, int) or kept < int(want["min_empty_kept"])):
    errs.append("superslabs.empty_kept %r, want at least %s" % (kept, want["min_empty_kept"]))
if "max_live_bytes" in want and r == 0 and l * size > int(want["max_live_bytes"]):
    errs.append("no SuperSlab released and %d live (%d MB): memory is not given back" % (l, l * size >> 20))
# "min:PATH=N", "max:PATH=N", "eq:PATH=N" on any number of the JSON; PATH may be several joined
# by '+' (their sum is compared).
for k, n in want.items():
    if ":" not in k:
        continue
    op, paths = k.split(":", 1)
    try:
        got = sum(get(x) for x in paths.split("+"))
    except KeyError as e:
        errs.append("key %s missing" % e.args[0]); continue
    if (op == "min" and got < int(n)) or (op == "max" and got > int(n)) or (op == "eq" and got != int(n)):
        errs.append("%s is %r, want %s %s" % (paths, got, {"min": ">=", "max": "<=", "eq": "=="}[op], n))
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
# decay: how long until every freed page is back, and the empty SuperSlabs it always keeps.
if pol["trim"] == "decay":
    get = lambda k, d: cp.get("trim", k).strip() if path and cp.has_option("trim", k) else d
    out.append("decay_ms=%s" % get("decay_ms", "10000"))
    out.append("reserve=%s" % get("empty_reserve", "2"))
m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)[bB]?", size)
if pol["superslab"] == "fixed" and m:
    out.append("size=%d" % (int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]))
# The file names promise some settings: a file that breaks its name's promise is an error.
promise = {"option-f.ini": "ownership=central", "option-g.ini": "ownership=tls", "hybrid.ini": "ownership=hybrid",
           "superslab-1mb.ini": "size=1048576", "trim-eager.ini": "trim=eager", "trim-none.ini": "trim=none",
           "trim-pressure.ini": "trim=pressure",
           "trim-decay.ini": "trim=decay"}
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
    want="only=1 min_frees=$((n + 4 * 65536)) threads_live=1 $exp"
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
# Decay: quiet for decay_ms and 1.5 s more, exactly its empty_reserve stays mapped (a floor)
# and the free pages went back (RSS, like idle's, at least 12 of the 16 MB lower).
idle() {
    local conf=$1 name="idle[$1]" summary exp want secs=1.5 rss_back=0 live end
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    exp=$(expect_for "$conf") || exp=""
    case $exp in
        *trim=idle*) want="max_empty_kept=0" rss_back=1 ;;
        # Below its low watermark pressure trims as idle; at or above it, more: never fewer go back.
        *trim=pressure*) want="max_empty_kept=0" rss_back=1 ;;
        *trim=none*) want="min_empty_kept=1" ;;
        *trim=decay*)
            local ms reserve
            ms=$(sed -n 's/.*decay_ms=\([^ ]*\).*/\1/p' <<<"$exp")
            reserve=$(sed -n 's/.*reserve=\([^ ]*\).*/\1/p' <<<"$exp")
            if ((ms < 0 || ms > 20000)); then say_skip "$name" "decay_ms = $ms: nothing comes back within the test"; return 0; fi
            secs=$(awk -v ms="$ms" 'BEGIN { printf "%.1f", ms / 1000 + 1.5 }')
            want="min_empty_kept=$reserve max_empty_kept=$reserve" rss_back=1 ;;
        *) say_skip "$name" "trim policy of $conf is not idle, none or decay"; return 0 ;;
    esac
    run "$name" "$conf" 60 any HAKMEM_STATS=json -- idle "$secs" || return 0
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" only=1 $want $exp) ||
        { say_fail "$name" "$summary"; repro "$conf" HAKMEM_STATS=json -- idle "$secs"; return 0; }
    read -r live end < <(sed -n 's/^idle: RSS \([0-9]*\) -> \([0-9]*\) kB$/\1 \2/p' "$LOGS/$name.out")
    if [[ -z $live || -z $end ]]; then say_fail "$name" "no 'idle: RSS a -> b kB' line on stdout"; return 0; fi
    if ((rss_back && end > live - 12 * 1024)); then
        say_fail "$name" "RSS $live -> $end kB after ${secs} s quiet: the 16 MB freed did not go back"
        repro "$conf" HAKMEM_STATS=json -- idle "$secs"; return 0
    fi
    say_pass "$name" "RSS $live -> $end kB after ${secs} s; $summary"
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
    local exp pace=""
    exp=$(expect_for "$conf") || exp=""
    # Idle trim paces its passes by idle_ms (50 in every idle config) while the program is
    # busy: 3 s of Larson make at most 60 of them, plus the quiet ones after; a helper woken by
    # every tick ran them back to back, purging what the threads used again.
    [[ " $exp " == *" trim=idle "* ]] && pace="max:trim_passes=70"
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" only=1 max_live_bytes=$((64 << 20)) $exp $pace) ||
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
            idle|pressure) want=back ;;
            none) want=kept ;;
            decay)
                local ms
                ms=$(expect_for "$conf" | sed -n 's/.*decay_ms=\([^ ]*\).*/\1/p')
                if ((ms < 0 || ms > 3000)); then
                    say_skip "$name" "decay_ms = $ms: the test waits 5 s for the mappings (decay-1s runs it)"; return 0
                fi ;;
            *) say_skip "$name" "trim policy '$trim' runs no pass while the program is idle"; return 0 ;;
        esac
    fi
    simple large_aging "$conf" 30 -- large_aging "$want"
}

# ---- trim pressure ----------------------------------------------------------------------------
# shellcheck source=tests/pressure-source.sh
. "$ROOT/tests/pressure-source.sh"

# pressure_conf NAME FS_ROOT [KEY=VALUE...]: a test configuration under trim pressure, reading
# /proc and /sys under FS_ROOT ("" for the real ones), with the snapshot's plugins.
pressure_conf() {
    local name=$1 root=$2 kv; shift 2
    {
        printf '[core]\npolicy_dir = %s\n[trim]\npolicy = pressure\n' "$SNAP/build/policies"
        [[ -n $root ]] && printf 'fs_root = %s\n' "$root"
        for kv in "$@"; do printf '%s\n' "${kv/=/ = }"; done
    } >"$TESTCONF/$name.ini"
    chmod 600 "$TESTCONF/$name.ini"
}

# pressure_files: the plugin over file trees that say what the kernel would (fs_root): a cgroup
# v2 at 95 % of memory.high (above the high mark: everything goes back, the threads' caches
# included), at 80 % (between the marks): the program holds 32 MB, frees it and wants RSS back;
# and a tree with nothing in it: one line at start-up, then the idle test's expectation.
pressure_files() {
    local band name t d want summary
    if [[ $MODE != hakmem ]]; then wanted "pressure_files[glibc]" && say_skip "pressure_files[glibc]" "hakmem only; $why_glibc"; return 0; fi
    for band in high mid none; do
        name="pressure_files[$band]"
        wanted "$name" || continue
        t=$TESTCONF/tree-$band
        d=$t/sys/fs/cgroup/e2e.slice
        mkdir -p "$t/proc/self"
        if [[ $band != none ]]; then
            mkdir -p "$d"
            echo "0::/e2e.slice" >"$t/proc/self/cgroup"
            if [[ $band == high ]]; then echo 950000000 >"$d/memory.current"; else echo 800000000 >"$d/memory.current"; fi
            echo 1000000000 >"$d/memory.high"
            echo max >"$d/memory.max"
            printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n' >"$d/memory.events"
        fi
        pressure_conf "pressure-$band" "$t" interval_ms=50
        # Nothing to read: the idle test's workload and expectation (every empty back once quiet).
        local prog=(pressure -m 32 back)
        [[ $band == none ]] && prog=(idle 1.5)
        run "$name" "pressure-$band" 60 any HAKMEM_STATS=json -- "${prog[@]}" || continue
        case $band in
            high) want="only=1 eq:policies.trim.counters.source=1 eq:policies.trim.counters.band=2
                        min:policies.trim.counters.high_passes=1 eq:policies.trim.counters.mid_passes=0
                        min:bytes_purged+superslabs.released=1" ;;
            mid) want="only=1 eq:policies.trim.counters.source=1 eq:policies.trim.counters.band=1
                       min:policies.trim.counters.mid_passes=1 eq:policies.trim.counters.high_passes=0" ;;
            none) want="eq:policies.trim.counters.source=0 eq:policies.trim.counters.mid_passes=0
                        eq:policies.trim.counters.high_passes=0 max_empty_kept=0"
                  local lines line
                  lines=$(grep -vc '^{"policies"' "$LOGS/$name.err")
                  line=$(grep -v '^{"policies"' "$LOGS/$name.err" | head -n1)
                  if [[ $lines != 1 || $line != "hakmem: trim pressure: no memory pressure to read ("*"/proc/pressure/memory: no such file); trimming as idle" ]]; then
                      say_fail "$name" "want exactly one line saying there is nothing to read, got $lines: $line"
                      repro "pressure-$band" HAKMEM_STATS=json -- "${prog[@]}"
                      continue
                  fi ;;
        esac
        # shellcheck disable=SC2086
        summary=$(check_json "$LOGS/$name.err" $want) ||
            { say_fail "$name" "$summary"; repro "pressure-$band" HAKMEM_STATS=json -- "${prog[@]}"; continue; }
        local what
        what=$(sed -n 's/^pressure: //p' "$LOGS/$name.out")
        [[ $band == none ]] && what="one line, then as idle"
        say_pass "$name" "$what; $summary"
    done
}

# A cgroup with a memory limit, made for one run where the machine allows it. cg_make sets CG
# (the folder) and CG_KIND (v2: memory.high = 64 MB, under the cgroup2 mount; v1: the memory
# controller still on a v1 hierarchy, memory.limit_in_bytes = 64 MB, inside this script's own
# group), or CG_WHY; cg_remove takes it away (also at exit, from the trap).
CGROUPS=()
CG_ENABLED=
cg_make() {
    CG='' CG_KIND='' CG_WHY=''
    if ((EUID != 0)); then CG_WHY="not root: making a cgroup needs root"; return 1; fi
    local v2 v1 own err
    v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
    v1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/self/mounts)
    if [[ -n $v2 ]] && grep -qw memory "$v2/cgroup.controllers" 2>/dev/null; then
        if ! grep -qw memory "$v2/cgroup.subtree_control"; then
            if ! err=$( (echo +memory >"$v2/cgroup.subtree_control") 2>&1); then
                CG_WHY="cannot enable the memory controller in $v2/cgroup.subtree_control: ${err##*: }"; return 1
            fi
            CG_ENABLED=$v2
        fi
        CG=$v2/hakmem-e2e.$$.$RANDOM CG_KIND=v2
    elif [[ -n $v1 ]]; then
        own=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup)
        CG=$v1${own%/}/hakmem-e2e.$$.$RANDOM CG_KIND=v1
    elif [[ -n $v2 ]]; then
        CG_WHY="no memory controller in cgroup v2 ($v2/cgroup.controllers: $(tr '\n' ' ' <"$v2/cgroup.controllers"| sed 's/ $//')) and none on a v1 hierarchy"; return 1
    else
        CG_WHY="no cgroup2 mount and no v1 memory hierarchy in /proc/self/mounts"; return 1
    fi
    if ! err=$(mkdir "$CG" 2>&1); then CG_WHY="mkdir $CG: ${err##*: }"; CG=; return 1; fi
    CGROUPS+=("$CG")
    local file=memory.high
    [[ $CG_KIND == v1 ]] && file=memory.limit_in_bytes
    if ! err=$( (echo $((64 << 20)) >"$CG/$file") 2>&1); then
        CG_WHY="cannot write $CG/$file: ${err##*: }"; cg_remove "$CG"; CG=; return 1
    fi
    return 0
}
cg_remove() {
    local d=$1 i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        [[ -d $d ]] || break
        rmdir "$d" 2>/dev/null && break
        sleep 0.2 # the killed program may take a moment to leave
    done
}
cg_cleanup() {
    local d
    for d in "${CGROUPS[@]}"; do cg_remove "$d"; done
    # Put the parent's controllers back as found (fails harmlessly if another group uses it now).
    [[ -n $CG_ENABLED ]] && { echo -memory >"$CG_ENABLED/cgroup.subtree_control"; } 2>/dev/null
    CGROUPS=() CG_ENABLED=
}

# pressure_cgroup CONF WANT: the program allocates 1 KB blocks until its cgroup's usage is 85 %
# (60 % for pressure-high, whose marks are 20/40) of the limit, frees them and wants RSS back
# (WANT=back: trim pressure, whose counters must show it read the cgroup and acted in the band)
# or kept (trim-none). Skipped with the reason where no cgroup can be made.
pressure_cgroup() {
    local conf=$1 want=$2 name="pressure_cgroup[$1]" pct=85 checks summary
    wanted "$name" || return 0
    if [[ $MODE != hakmem ]]; then say_skip "$name" "hakmem only; $why_glibc"; return 0; fi
    if ! cg_make; then say_skip "$name" "$CG_WHY"; return 0; fi
    [[ $conf == pressure-high ]] && pct=60
    run "$name" "$conf" 60 any HAKMEM_STATS=json -- pressure -c "$CG" -p $pct "$want"
    local ok=$?
    cg_remove "$CG"
    ((ok == 0)) || return 0
    local src=1
    [[ $CG_KIND == v1 ]] && src=2
    case $conf in
        trim-pressure) checks="eq:policies.trim.counters.source=$src min:policies.trim.counters.mid_passes+policies.trim.counters.high_passes=1 min:bytes_purged+superslabs.released=1" ;;
        pressure-high) checks="eq:policies.trim.counters.source=$src min:policies.trim.counters.high_passes=1 min:bytes_purged+superslabs.released=1" ;;
        trim-none) checks="eq:bytes_purged=0 eq:superslabs.released=0" ;;
    esac
    # shellcheck disable=SC2086
    summary=$(check_json "$LOGS/$name.err" only=1 $checks) ||
        { say_fail "$name" "cgroup $CG_KIND: $summary"; echo "    (the cgroup is made by tests/e2e/run.sh's cg_make)"; return 0; }
    say_pass "$name" "cgroup $CG_KIND; $(sed -n 's/^pressure: //p' "$LOGS/$name.out"); $summary"
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
trap 'rm -rf "$REAL_TMP"; cg_cleanup' EXIT
trap 'exit 130' INT TERM # so that the EXIT trap removes the cgroups

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
if [[ $MODE == hakmem && " $ALL " == *" trim-pressure "* ]] && ! pressure_source_here; then
    ALL=${ALL/ trim-pressure / }
    say_skip "*[trim-pressure]" "this machine has neither PSI nor cgroup memory files: trim pressure says so in one line at start-up, which the suites' empty-stderr rule refuses; pressure_files[none] tests that case"
fi
if [[ $MODE == hakmem ]]; then
    c_all=${E2E_CONFS:-$ALL}
    c_threads=${E2E_CONFS:-"builtin option-g option-f hybrid"}
    c_some=${E2E_CONFS:-"builtin option-f"}
    c_ss=${E2E_CONFS:-"builtin superslab-1mb"}
    c_maps=${E2E_CONFS:-"builtin option-f superslab-1mb"}
    c_aging=${E2E_CONFS:-"builtin idle-20ms trim-none decay-1s"}
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
# The cold part of the library stays untouched by a small program (core/layout.ld); built-in
# configuration only, since a file runs the INI parser, which is cold code.
if [[ $MODE == hakmem ]]; then simple layout builtin 30 -- layout
else wanted "layout[glibc]" && say_skip "layout[glibc]" "hakmem only; $why_glibc"; fi
for c in $c_all; do
    if [[ $MODE == hakmem ]]; then simple accounting "$c" 60 -- accounting
    else wanted "accounting[$c]" && say_skip "accounting[$c]" "hakmem only; $why_glibc"; fi
done
unsafe_dir
if [[ $MODE == hakmem ]]; then simple hakapi builtin 30 -- hakapi
else wanted "hakapi[glibc]" && say_skip "hakapi[glibc]" "hakmem only; $why_glibc"; fi
for c in $c_all; do stats "$c"; done
for c in $c_all; do simple thread_states "$c" 60 -- thread_states; done
# The idle trim policy promises no wake-up in an idle program (decay wakes while memory is on
# its curve, pressure samples every interval: by design).
for c in $c_all; do
    if [[ $MODE == hakmem && $(expect_for "$c" 2>/dev/null) != *trim=idle* ]]; then
        wanted "idle_wakeups[$c]" && say_skip "idle_wakeups[$c]" "trim policy $(expect_for "$c" | sed -n 's/.*trim=\([^ ]*\).*/\1/p'): the promise is the idle policy's"
    else
        simple idle_wakeups "$c" 30 -- idle_wakeups
    fi
done
for c in $c_all; do idle "$c"; done
# Blocks freed to a thread that then sleeps go back (trim passes reclaim for it): idle trim, and
# pressure, which trims as idle below its low mark.
for c in ${E2E_CONFS:-builtin hakmem option-g option-f hybrid superslab-1mb trim-pressure}; do
    [[ $c == trim-pressure && " $ALL " != *" trim-pressure "* ]] && continue # left out, said above
    if [[ $MODE == hakmem ]]; then simple idle_owner "$c" 60 -- idle_owner 10
    else wanted "idle_owner[$c]" && say_skip "idle_owner[$c]" "hakmem only; $why_glibc"; fi
done
for c in $c_all; do larson "$c"; done
pressure_files
if [[ $MODE == hakmem ]]; then
    pressure_conf pressure-high "" low_watermark=20 high_watermark=40
    for c in trim-pressure pressure-high trim-none; do
        case $c in trim-none) pressure_cgroup "$c" kept ;; *) pressure_cgroup "$c" back ;; esac
    done
else
    for c in trim-pressure pressure-high trim-none; do wanted "pressure_cgroup[$c]" && say_skip "pressure_cgroup[$c]" "hakmem only; $why_glibc"; done
fi
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
