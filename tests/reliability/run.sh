#!/usr/bin/env bash
# Reliability runner: invalid frees must be caught (one "hakmem:" line naming the problem and the
# address, then SIGABRT), and faults must be survived (fork from threads and from a signal handler,
# a handler's fork inside a fork, fork while threads use stdio, malloc re-entered from a signal handler,
# pthread_exit() of the main thread, RLIMIT_AS, a tiny map_budget, thread exit, free after
# exit() started, a damaged plugin file named by the INI file). Every program runs in its own
# process under LD_PRELOAD, under the built-in configuration and every conf/*.ini (the damaged
# plugins under INI files of their own). Last, the watchdog's stack saver on a deadlocked program. Prints PASS/FAIL/XFAIL/SKIP per case and a last line
# "N passed, M failed, K skipped"; exits non-zero if anything failed.
#
# Usage: tests/reliability/run.sh [BINDIR]     (BINDIR defaults to build/tests/reliability)
# Environment:
#   HAKMEM_LIB=path   library to preload (default build/libhakmem.so)
#   REL_FILTER=regex  only cases whose name (e.g. "invalid_free/double_free[option-f]") matches
#   REL_SKIP=regex    leave out cases whose name matches (reported as SKIP)
#   REL_CONFS="..."   configurations to use ("builtin" = no file, else a conf/ name without .ini)
#   REL_STRICT=1      known gaps (XFAIL: invalid frees hakmem does not catch yet, children hurt by a
#                     fork that interrupted a fast path) count as failures
#   REL_KEEP=1        keep the logs of passing cases too
# Only the program under test is preloaded; this script, timeout, env, eu-stack and gdb are not.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BIN=$(cd "${1:-build/tests/reliability}" 2>/dev/null && pwd) ||
    { echo "no test programs in ${1:-build/tests/reliability}: run make first" >&2; exit 2; }
LIB=${HAKMEM_LIB:-build/libhakmem.so}
[[ $LIB == /* ]] || LIB=$ROOT/$LIB
[[ -f $LIB ]] || { echo "$LIB is not built: run make first" >&2; exit 2; }
LOGS=$(mktemp -d "$BIN/logs.XXXXXX") || exit 2
ulimit -c 0 # the aborts are expected: no core files
PY=python3

# A snapshot of the library, its plugins and the configurations, laid out as in the checkout
# (conf/*.ini name ../build/policies), so a rebuild during the run changes nothing.
SNAP=$LOGS/snapshot
mkdir -p "$SNAP/build" "$SNAP/conf" "$SNAP/budget"
cp "$LIB" "$SNAP/build/libhakmem.so" || exit 2
[[ -d $ROOT/build/policies ]] && cp -r "$ROOT/build/policies" "$SNAP/build/policies"
cp "$ROOT"/conf/*.ini "$SNAP/conf/" 2>/dev/null
chmod -R go-w "$SNAP"
LIB=$SNAP/build/libhakmem.so
echo "reliability: preloading a copy of ${HAKMEM_LIB:-build/libhakmem.so} (with build/policies and conf/) from $SNAP"

pass=0 failn=0 skipn=0 xfailn=0
failed=() gaps=()
wanted() {
    [[ -z ${REL_FILTER:-} || $1 =~ $REL_FILTER ]] || return 1
    if [[ -n ${REL_SKIP:-} && $1 =~ $REL_SKIP ]]; then say_skip "$1" "REL_SKIP"; return 1; fi
}
say_pass() { pass=$((pass + 1)); echo "PASS $1${2:+ ($2)}"; [[ ${REL_KEEP:-} == 1 ]] || rm -f "$LOGS/$(logname "$1")".*; }
say_fail() { failn=$((failn + 1)); failed+=("$1"); echo "FAIL $1 ($2)"; }
say_skip() { skipn=$((skipn + 1)); echo "SKIP $1 ($2)"; }
# A known gap: hakmem does not meet the expectation yet. A failure under REL_STRICT=1.
say_gap() {
    if [[ ${REL_STRICT:-} == 1 ]]; then say_fail "$1" "known gap: $2"; return; fi
    xfailn=$((xfailn + 1)); gaps+=("$1"); echo "XFAIL $1 (known gap: $2)"
}
logname() { tr '/[]' '___' <<<"$1"; }

conf_file() { [[ $1 == builtin ]] && echo "" || echo "$SNAP/conf/$1.ini"; }

# The configuration $1 with map_budget = $2, written beside the snapshot (policy_dir made
# absolute, since the file moves). Prints its path.
budget_conf() {
    local conf=$1 budget=$2 out="$SNAP/budget/$1.ini" src
    src=$(conf_file "$conf")
    if [[ -z $src ]]; then
        printf '[core]\nmap_budget = %s\n' "$budget" >"$out"
    else
        awk -v b="$budget" -v pd="$SNAP/build/policies" '
            /^[ \t]*\[core\][ \t]*$/ { print; print "map_budget = " b; core = 1; next }
            /^[ \t]*map_budget[ \t]*[=:]/ { next }
            /^[ \t]*policy_dir[ \t]*[=:]/ { print "policy_dir = " pd; next }
            { print }
            END { if (!core) { print "[core]"; print "map_budget = " b } }' "$src" >"$out"
    fi
    chmod 600 "$out"
    echo "$out"
}

describe_rc() {
    local rc=$1 t=$2
    if ((rc == 124)); then echo "timed out after ${t}s (hang or deadlock)"
    elif ((rc == 137)); then echo "killed (SIGKILL) after timing out at ${t}s"
    elif ((rc > 128)); then echo "killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null))"
    else echo "exit status $rc"
    fi
}

# run NAME CONF TIMEOUT CONFFILE [VAR=VALUE...] -- PROGRAM ARGS...: runs the program under hakmem
# with HAKMEM_CONF=CONFFILE; output in $OUT and $ERR, status in RC. A watchdog saves every
# thread's stack (tests/save-stacks.sh: eu-stack, else gdb) shortly before the timeout kills a hung
# program.
run() {
    local name=$1 conf=$2 t=$3 cfile=$4; shift 4
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    local prog=$1; shift
    OUT=$LOGS/$(logname "$name").out ERR=$LOGS/$(logname "$name").err
    REPRO="LD_PRELOAD=${HAKMEM_LIB:-build/libhakmem.so} HAKMEM_CONF=${cfile#"$SNAP"/} ${envs[*]:+${envs[*]} }${BIN#"$ROOT"/}/$prog $*"
    timeout -k 5 "$t" env -u HAKMEM_STATS LD_PRELOAD="$LIB" HAKMEM_CONF="$cfile" "${envs[@]}" "$BIN/$prog" "$@" \
        >"$OUT" 2>"$ERR" </dev/null &
    local tpid=$! dog=
    if command -v pgrep >/dev/null && ((t > 10)); then
        (
            exec 2>/dev/null
            sleep $((t - 6))
            "$ROOT/tests/save-stacks.sh" "$LOGS/$(logname "$name").stacks" $tpid 2
        ) &
        dog=$!
    fi
    wait $tpid 2>/dev/null # no "Aborted" notice from bash: the aborts are expected
    RC=$?
    if [[ -n $dog ]]; then
        pkill -P $dog 2>/dev/null
        kill $dog 2>/dev/null
        wait $dog 2>/dev/null
    fi
    return 0
}

fail_run() { # NAME REASON: a failure with the first stderr line and the reproducer
    local first
    first=$(grep -m1 -v '^$' "$ERR" | cut -c1-300)
    [[ -s $LOGS/$(logname "$1").stacks ]] && first="${first:+$first; }stacks in $LOGS/$(logname "$1").stacks"
    say_fail "$1" "$2${first:+: $first}"
    echo "    to reproduce: $REPRO"
}

# ---- 1. invalid frees ----------------------------------------------------------------------------
# CASE;what hakmem must say after "hakmem: " (ADDR = the address the program printed);gap
# gap=1: hakmem is known not to catch it yet (XFAIL unless REL_STRICT=1).
INVALID_CASES=(
    "double_free;free\\(\\): double free of ADDR$;0"
    "double_free_after_others;free\\(\\): double free of ADDR$;0"
    "double_free_thread;free\\(\\): double free of ADDR$;0"
    "free_stack;free\\(\\): invalid pointer ADDR \\(not allocated by hakmem;0"
    "free_global;free\\(\\): invalid pointer ADDR \\(not allocated by hakmem;0"
    "free_interior;free\\(\\): invalid pointer ADDR \\(not the start of a block\\)$;0"
    "free_misaligned;free\\(\\): invalid pointer ADDR \\(not the start of a block\\)$;0"
    "large_double_free;free\\(\\): invalid pointer ADDR \\(not allocated by hakmem, or already freed\\)$;0"
    "large_interior;free\\(\\): invalid pointer ADDR \\(not allocated by hakmem;0"
    "realloc_freed;(realloc|free)\\(\\): (double free of|invalid pointer) ADDR;0"
    "realloc_freed_large;realloc\\(\\): invalid pointer ADDR;0"
    "realloc_freed_same;(realloc|free)\\(\\): (double free of|invalid pointer) ADDR;0"
    "double_free_after_flush;free\\(\\): (double free of|invalid pointer) ADDR;0"
    "double_free_thread_exited;free\\(\\): (double free of|invalid pointer) ADDR;0"
    "double_free_remote;free\\(\\): (double free of|invalid pointer) ADDR;0"
)

invalid_free() { # CONF CASE PATTERN GAP
    local conf=$1 case=$2 pat=$3 gap=$4 name="invalid_free/$2[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 30 "$(conf_file "$conf")" -- invalid_free "$case"
    local addr lines line
    addr=$(sed -n 's/^addr=\(0x[0-9a-f]*\)$/\1/p' "$OUT" | head -n1)
    lines=$(wc -l <"$ERR")
    line=$(head -n1 "$ERR")
    local re="^hakmem: ${pat//ADDR/$addr}"
    local why=""
    if [[ -z $addr ]]; then why="the program printed no address ($(describe_rc $RC 30))"
    elif ((RC == 3)); then why="not caught: $line"
    elif ((RC != 134)); then why="$(describe_rc $RC 30), want SIGABRT"
    elif ((lines != 1)); then why="$lines stderr lines, want exactly one"
    elif [[ $line != hakmem:* ]]; then why="the stderr line does not start with 'hakmem:'"
    elif [[ $line != *"$addr"* ]]; then why="the line does not name $addr"
    elif ! [[ $line =~ $re ]]; then why="the line does not say what was expected (/$re/)"
    fi
    if [[ -z $why ]]; then say_pass "$name" "$line"; return 0; fi
    if ((gap)); then say_gap "$name" "$why"; echo "    to reproduce: $REPRO"; return 0; fi
    say_fail "$name" "$why"
    echo "    to reproduce: $REPRO"
}

# ---- 2. faults -----------------------------------------------------------------------------------

# simple NAME CONF TIMEOUT -- PROGRAM ARGS: exit 0 and an empty stderr. NAME is the program's
# (the prefix of its summary line), or PROGRAM/VARIANT.
simple() {
    local test=${1%%/*} conf=$2 t=$3
    local name="$1[$conf]"
    shift 4
    wanted "$name" || return 0
    run "$name" "$conf" "$t" "$(conf_file "$conf")" -- "$@"
    if ((RC != 0)); then fail_run "$name" "$(describe_rc $RC "$t")"; return 0; fi
    if [[ -s $ERR ]]; then fail_run "$name" "exit 0 but stderr is not empty"; return 0; fi
    say_pass "$name" "$(grep -m1 "^$test: .*ok" "$OUT" | sed "s/^$test: //")"
}

# main_exit CONF MODE: the main thread calls pthread_exit(); the process must end with status 0
# once its other thread returns. Under an idle-trim configuration the program must have seen the
# trim helper thread (else the case was not exercised).
trim_of() { # the trim policy a configuration names (idle when none)
    local f
    f=$(conf_file "$1")
    [[ -z $f ]] && { echo idle; return; }
    awk 'BEGIN { p = "idle" } /^[ \t]*\[/ { s = $0; gsub(/[][ \t]/, "", s) }
         s == "trim" && /^[ \t]*policy[ \t]*[=:]/ { sub(/^[^=:]*[=:][ \t]*/, ""); sub(/[ \t;#].*/, ""); p = $0 }
         END { print p }' "$f"
}
main_exit() {
    local conf=$1 mode=$2 name="main_exit/$2[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 30 "$(conf_file "$conf")" -- main_exit "$mode"
    if ((RC != 0)); then fail_run "$name" "$(describe_rc $RC 30): the process did not end with its last thread"
    elif [[ -s $ERR ]]; then fail_run "$name" "exit 0 but stderr is not empty"
    elif [[ $(trim_of "$conf") == idle ]] && ! grep -q 'helper: yes' "$OUT"; then
        fail_run "$name" "no trim helper thread was running: the case was not exercised"
    else say_pass "$name" "exit 0 after pthread_exit() of the main thread$([[ $mode == fork ]] && echo ", in a fork child")"
    fi
}

fork_signal() {
    local conf=$1 name="fork_signal[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 60 "$(conf_file "$conf")" -- fork_signal 50
    if ((RC == 4)) && [[ $(wc -l <"$ERR") == 1 ]]; then
        say_gap "$name" "$(head -n1 "$ERR")"
        echo "    to reproduce: $REPRO"
    elif ((RC != 0)); then fail_run "$name" "$(describe_rc $RC 60)"
    elif [[ -s $ERR ]]; then fail_run "$name" "exit 0 but stderr is not empty"
    else say_pass "$name" "$(sed -n 's/^fork_signal: //p' "$OUT")"
    fi
}

# Either it completes, or it aborts with the one re-entry line; never a hang or another crash.
signal_reentry() {
    local conf=$1 name="signal_reentry[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 30 "$(conf_file "$conf")" -- signal_reentry 3
    local lines
    lines=$(wc -l <"$ERR")
    if ((RC == 0)) && ((lines == 0)); then
        say_pass "$name" "$(sed -n 's/^signal_reentry: //p' "$OUT")"
    elif ((RC == 134)) && ((lines == 1)) && grep -q '^hakmem: malloc() re-entered on the same thread\|^hakmem: free() re-entered on the same thread' "$ERR"; then
        say_pass "$name" "detected and aborted: $(cut -c1-100 "$ERR")..."
    else
        fail_run "$name" "$(describe_rc $RC 30) with $lines stderr line(s), want exit 0 or one re-entry line and SIGABRT"
    fi
}

rlimit_as() { # exit 0; stderr empty or one hakmem: line
    local conf=$1 name="rlimit_as[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 60 "$(conf_file "$conf")" -- rlimit_as 256
    local lines
    lines=$(wc -l <"$ERR")
    if ((RC != 0)); then fail_run "$name" "$(describe_rc $RC 60)"
    elif ((lines > 1)) || { ((lines == 1)) && ! grep -q '^hakmem:' "$ERR"; }; then
        fail_run "$name" "stderr has $lines line(s), want at most one 'hakmem:' line"
    else say_pass "$name" "$(sed -n 's/^rlimit_as: \(.*ok\)$/\1/p' "$OUT")"
    fi
}

map_budget() { # exactly ONE diagnostic line for three rounds of exhaustion; exit 0 (or 4: gap)
    local conf=$1 name="map_budget[$1]" cfile
    wanted "$name" || return 0
    cfile=$(budget_conf "$conf" 16)
    run "$name" "$conf" 60 "$cfile" -- map_budget 16
    local diags
    diags=$(grep -c '^hakmem:' "$ERR")
    if ((RC != 0 && RC != 4)); then fail_run "$name" "$(describe_rc $RC 60)"
    elif ((diags != 1)); then fail_run "$name" "$diags 'hakmem:' line(s) on stderr, want exactly one diagnostic"
    elif ! grep -q '^hakmem: mapping budget of 16 reached' "$ERR"; then
        fail_run "$name" "the line is not the budget diagnostic"
    elif ((RC == 4)) && [[ $(wc -l <"$ERR") == 2 ]]; then
        say_gap "$name" "ENOMEM, one diagnostic and working frees, but $(grep -v '^hakmem:' "$ERR" | sed 's/^map_budget: //')"
        echo "    to reproduce: $REPRO"
    elif ((RC != 0)) || [[ $(wc -l <"$ERR") != 1 ]]; then fail_run "$name" "stderr has more than the diagnostic"
    else say_pass "$name" "$(sed -n 's/^map_budget: \(.*ok\)$/\1/p' "$OUT"); said: $(cut -c1-60 "$ERR")..."
    fi
}

exit_stats() { # free after exit() started, with the exit-time JSON stats printed meanwhile
    local conf=$1 name="exit_free_stats[$1]"
    wanted "$name" || return 0
    run "$name" "$conf" 30 "$(conf_file "$conf")" HAKMEM_STATS=json -- exit_free once
    if ((RC != 0)); then fail_run "$name" "$(describe_rc $RC 30)"
    elif [[ $(wc -l <"$ERR") != 1 ]] || ! grep -q '^{"policies"' "$ERR"; then
        fail_run "$name" "stderr is not exactly one JSON stats line"
    else say_pass "$name" "one JSON stats line at exit"
    fi
}

# ---- 3. damaged plugin files ----------------------------------------------------------------------
# A plugin cut short (a partial install), empty, random bytes, for another machine, class, byte
# order or type, without a descriptor symbol, with a descriptor smaller than its struct: the
# program reaches main and runs on the built-in, with exactly one "hakmem:" line naming the file
# and what is wrong (issue 14: a plain dlopen of the cut files dies of SIGBUS before main). The
# damaged files are made here from the snapshot's real trim_eager.so (damage_plugin.py) and the
# fixture plugins; the untouched copy must load. Each case has its own folder and INI file.
damaged_one() { # NAME INI EXPECT-POLICIES WANT-REASON (empty: must load, stderr empty)
    local name=$1 ini=$2 pols=$3 want=$4 lines line
    wanted "$name" || return 0
    # shellcheck disable=SC2086
    run "$name" builtin 60 "$ini" -- plugin_fallback $pols
    lines=$(wc -l <"$ERR")
    line=$(head -n1 "$ERR")
    if ((RC != 0)); then fail_run "$name" "$(describe_rc $RC 60), want exit 0 on the built-in"
    elif ! grep -q "^plugin_fallback: ownership" "$OUT"; then fail_run "$name" "no summary line on stdout"
    elif [[ -z $want ]] && ((lines != 0)); then fail_run "$name" "the undamaged plugin did not load cleanly"
    elif [[ -n $want ]] && ((lines != 1)); then fail_run "$name" "$lines stderr lines, want exactly one 'hakmem:' line"
    elif [[ -n $want && $line != "hakmem: "* ]]; then fail_run "$name" "the stderr line does not start with 'hakmem: '"
    elif [[ -n $want && $line != *"$want"* ]]; then fail_run "$name" "the line does not say '$want'"
    elif [[ -n $want && $line != *"; using built-in '"*"'" ]]; then fail_run "$name" "the line does not end with the fallback"
    elif [[ -z $line ]]; then say_pass "$name" "loaded, no line"
    else say_pass "$name" "${line##*.so: }"
    fi
}

damaged_plugins() {
    local dir=$SNAP/damaged case size why ini src=$SNAP/build/policies/trim_eager.so
    if [[ ! -f $src ]]; then say_skip "damaged_plugin" "$src not built"; return 0; fi
    mkdir -p "$dir" && chmod 755 "$dir"
    if ! "$PY" "$ROOT/tests/reliability/damage_plugin.py" "$src" "$dir/trim" >"$LOGS/damaged.cases"; then
        say_fail "damaged_plugin" "tests/reliability/damage_plugin.py failed"; return 0
    fi
    while read -r case size why; do
        ini=$dir/trim/$case.ini
        printf '[core]\npolicy_dir = %s\n[trim]\npolicy = eager\n' "$dir/trim/$case" >"$ini"
        chmod 600 "$ini"
        if [[ $case == whole ]]; then damaged_one "damaged_plugin/trim_$case[builtin]" "$ini" "tls fixed eager" ""
        else damaged_one "damaged_plugin/trim_$case[builtin]" "$ini" "tls fixed idle" "trim_eager.so: $why"
        fi
    done <"$LOGS/damaged.cases"
    # A damaged trim plugin beside a good ownership plugin: the good one still loads.
    mkdir -p "$dir/mixed" && chmod 755 "$dir/mixed"
    cp "$dir/trim/cut4096/trim_eager.so" "$SNAP/build/policies/ownership_central.so" "$dir/mixed/"
    ini=$dir/mixed.ini
    printf '[core]\npolicy_dir = %s\n[ownership]\npolicy = central\n[trim]\npolicy = eager\n' "$dir/mixed" >"$ini"
    chmod 600 "$ini"
    damaged_one "damaged_plugin/trim_cut4096_beside_central[builtin]" "$ini" "central fixed idle" \
        "trim_eager.so: ELF file of 4096 bytes, expected at least"
    # Well-formed shared objects that are not plugins: no descriptor, a descriptor symbol too small.
    local fx=$ROOT/build/tests/fixtures
    mkdir -p "$dir/own" && chmod 755 "$dir/own"
    for case in "nodesc;symbol hak_policy_descriptor: not found, expected a struct hak_policy_desc" \
                "tinysym;symbol hak_policy_descriptor: object of 8 bytes, expected at least"; do
        local fname=${case%%;*}
        if [[ ! -f $fx/ownership_$fname.so ]]; then say_skip "damaged_plugin/ownership_$fname[builtin]" "$fx/ownership_$fname.so not built (make unit-build)"; continue; fi
        cp "$fx/ownership_$fname.so" "$dir/own/" && chmod 644 "$dir/own/ownership_$fname.so"
        ini=$dir/own/$fname.ini
        printf '[core]\npolicy_dir = %s\n[ownership]\npolicy = %s\n' "$dir/own" "$fname" >"$ini"
        chmod 600 "$ini"
        damaged_one "damaged_plugin/ownership_$fname[builtin]" "$ini" "tls fixed idle" "ownership_$fname.so: ${case#*;}"
    done
}

# The watchdogs' stack saver itself, on a program deadlocked on purpose (tests/reliability/hang.c)
# under hakmem: both deadlocked threads' functions must be in the saved stacks, within seconds.
stacks() {
    local name="stacks[builtin]" stk
    wanted "$name" || return 0
    OUT=$LOGS/$(logname "$name").out ERR=$LOGS/$(logname "$name").err stk=$LOGS/$(logname "$name").stacks
    REPRO="timeout 30 env LD_PRELOAD=${HAKMEM_LIB:-build/libhakmem.so} ${BIN#"$ROOT"/}/hang & sleep 1; tests/save-stacks.sh /dev/stdout \$!"
    timeout -k 5 30 env -u HAKMEM_STATS LD_PRELOAD="$LIB" HAKMEM_CONF= "$BIN/hang" >"$OUT" 2>"$ERR" </dev/null &
    local tpid=$! i
    for ((i = 0; i < 100; i++)); do grep -q '^hang: ready' "$OUT" && break; sleep 0.1; done
    sleep 0.3 # the threads are a few instructions from their second lock
    local t0=$SECONDS
    "$ROOT/tests/save-stacks.sh" "$stk" $tpid 5
    local rc=$? took=$((SECONDS - t0))
    kill $tpid 2>/dev/null
    wait $tpid 2>/dev/null
    local tool
    grep -q '^(eu-stack, exit' "$stk" 2>/dev/null && tool=eu-stack || tool=gdb
    if ! grep -q '^hang: ready' "$OUT"; then fail_run "$name" "the deadlocked program never said it was ready"
    elif ((rc != 0)); then fail_run "$name" "tests/save-stacks.sh saved no stack (exit $rc): $(grep -m1 failed "$stk")"
    elif ! grep -q hang_take_a_then_b "$stk" || ! grep -q hang_take_b_then_a "$stk"; then
        fail_run "$name" "the saved stacks lack the deadlocked threads' functions (see $stk)"
    elif command -v eu-stack >/dev/null && [[ $tool != eu-stack ]]; then
        fail_run "$name" "eu-stack is installed but the stacks came from gdb: $(grep -m1 'eu-stack failed' "$stk")"
    else say_pass "$name" "both deadlocked threads' stacks saved by $tool in ${took}s"
    fi
}

# ---- the plan ------------------------------------------------------------------------------------
ALL="builtin $(for f in "$SNAP"/conf/*.ini; do [[ -f $f ]] && basename "$f" .ini; done | tr '\n' ' ')"
# shellcheck source=tests/pressure-source.sh
. "$ROOT/tests/pressure-source.sh"
if [[ " $ALL " == *" trim-pressure "* ]] && ! pressure_source_here; then
    ALL=${ALL/ trim-pressure / }
    say_skip "*[trim-pressure]" "this machine has neither PSI nor cgroup memory files: trim pressure says so in one line at start-up, which these checks of stderr refuse"
fi
CONFS=${REL_CONFS:-$ALL}

for c in $CONFS; do
    for spec in "${INVALID_CASES[@]}"; do
        IFS=';' read -r case pat gap <<<"$spec"
        invalid_free "$c" "$case" "$pat" "$gap"
    done
done
for c in $CONFS; do
    simple fork_threads "$c" 120 -- fork_threads 20
    fork_signal "$c"
    for m in main threads nested; do
        simple fork_handler/$m "$c" 60 -- fork_handler $m 50
    done
    simple fork_stdio "$c" 60 -- fork_stdio 50
    main_exit "$c" plain
    main_exit "$c" fork
    signal_reentry "$c"
    rlimit_as "$c"
    map_budget "$c"
    simple thread_exit "$c" 120 -- thread_exit 40
    simple exit_free "$c" 60 -- exit_free 20
    exit_stats "$c"
done

damaged_plugins
stacks

if ((xfailn > 0)); then
    echo "known gaps (XFAIL, not counted as failures; REL_STRICT=1 makes them fail): ${gaps[*]}"
fi
if ((failn > 0)); then
    echo "failed: ${failed[*]} (logs in $LOGS)"
elif [[ ${REL_KEEP:-} != 1 ]]; then
    rm -rf "$LOGS"
fi
echo "$pass passed, $failn failed, $skipn skipped"
((failn == 0))
