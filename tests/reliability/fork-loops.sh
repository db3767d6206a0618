#!/usr/bin/env bash
# The long fork loops (make test-fork-loops): every fork program of the reliability suite, under
# the built-in configuration and every conf/*.ini, FORKS forks each (default 1000) in runs of
# RUN forks (default 100), each run in its own session under a timeout. A run that times out is
# a hang: every process of it gets its stacks saved (tests/save-stacks.sh: eu-stack, gdb as a
# fallback) and is killed. Prints one line per program and configuration ("N forks in R runs: H hangs, F failed")
# and a last line with the totals; exits non-zero if anything hung or failed.
#   fork_handler main     fork() in a SIGALRM handler while the only thread allocates
#   fork_handler threads  the same in 4 allocating threads, signalled by a fifth
#   fork_handler nested   a handler's fork() inside a fork() of the same thread
#   fork_stdio            fork() while threads use getline/rewind/setvbuf and fflush(NULL)
#   fork_threads          simultaneous forks while threads allocate and use stdio
#
# Usage: tests/reliability/fork-loops.sh [BINDIR]   (default build/tests/reliability)
# Environment: FORKS, RUN, TIMEOUT (seconds per run, default 120), LOOP_CONFS ("builtin" or
# conf/ names), LOOP_PROGS (a subset of the names above, e.g. "fork_stdio fork_handler:threads"),
# HAKMEM_LIB (default build/libhakmem.so).

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BIN=$(cd "${1:-build/tests/reliability}" 2>/dev/null && pwd) || { echo "no test programs: run make first" >&2; exit 2; }
LIB=${HAKMEM_LIB:-build/libhakmem.so}
[[ $LIB == /* ]] || LIB=$ROOT/$LIB
[[ -f $LIB ]] || { echo "$LIB is not built: run make first" >&2; exit 2; }
FORKS=${FORKS:-1000} RUN=${RUN:-100} TIMEOUT=${TIMEOUT:-120}
LOGS=$(mktemp -d "$BIN/loops.XXXXXX") || exit 2
ulimit -c 0

# A snapshot, as tests/reliability/run.sh makes one: a rebuild meanwhile changes nothing.
SNAP=$LOGS/snapshot
mkdir -p "$SNAP/build" "$SNAP/conf"
cp "$LIB" "$SNAP/build/libhakmem.so" || exit 2
[[ -d $ROOT/build/policies ]] && cp -r "$ROOT/build/policies" "$SNAP/build/policies"
cp "$ROOT"/conf/*.ini "$SNAP/conf/"
chmod -R go-w "$SNAP"
LIB=$SNAP/build/libhakmem.so
ALL="builtin $(for f in "$SNAP"/conf/*.ini; do basename "$f" .ini; done | tr '\n' ' ')"
PROGS=${LOOP_PROGS:-"fork_handler:main fork_handler:threads fork_handler:nested fork_stdio fork_threads"}

totals_f=0 totals_h=0 totals_x=0
for conf in ${LOOP_CONFS:-$ALL}; do
    cfile=""
    [[ $conf == builtin ]] || cfile=$SNAP/conf/$conf.ini
    for spec in $PROGS; do
        prog=${spec%%:*} mode=
        [[ $spec == *:* ]] && mode=${spec#*:}
        name="$prog${mode:+ $mode}[$conf]"
        done=0 runs=0 hangs=0 failed=0
        while ((done < FORKS)); do
            n=$((FORKS - done < RUN ? FORKS - done : RUN))
            args=($mode $n)
            [[ $prog == fork_threads ]] && args=($(((n + 3) / 4))) # rounds of 4 simultaneous forks
            log=$LOGS/$prog${mode:+-$mode}-$conf.$runs
            # In a session of its own (its fork children too), under a wrapper that only waits, so
            # the stacks saver (which walks below a pid) sees the program and its children.
            setsid sh -c '"$@"; exit $?' sh env -u HAKMEM_STATS LD_PRELOAD="$LIB" HAKMEM_CONF="$cfile" \
                "$BIN/$prog" "${args[@]}" >"$log.out" 2>"$log.err" </dev/null &
            pid=$!
            for ((s = 0; s < TIMEOUT * 10; s++)); do
                kill -0 $pid 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 $pid 2>/dev/null; then
                hangs=$((hangs + 1))
                "$ROOT/tests/save-stacks.sh" "$log.stacks" $pid 10
                kill -9 -- -$pid 2>/dev/null
                wait $pid 2>/dev/null
                echo "    hang: stacks in $log.stacks"
            else
                wait $pid
                rc=$?
                if ((rc != 0)) || [[ -s $log.err ]]; then
                    failed=$((failed + 1))
                    echo "    failed (status $rc): $(head -c 300 "$log.err")"
                else
                    rm -f "$log.out" "$log.err"
                fi
            fi
            pkill -9 -s $pid 2>/dev/null # children a killed or failed run left behind (its session)
            done=$((done + n))
            runs=$((runs + 1))
        done
        echo "$name: $done forks in $runs runs: $hangs hangs, $failed failed"
        totals_f=$((totals_f + done)) totals_h=$((totals_h + hangs)) totals_x=$((totals_x + failed))
    done
done
echo "fork loops: $totals_f forks, $totals_h hangs, $totals_x failed runs (logs in $LOGS)"
((totals_h == 0 && totals_x == 0)) && rm -rf "$LOGS"
((totals_h == 0 && totals_x == 0))
