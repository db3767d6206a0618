#!/usr/bin/env bash
# Fuzz runner: runs each libFuzzer harness for SECONDS seconds on a working copy of the committed
# seed corpus (plus the current conf/*.ini and tests/fixtures/*.ini for the config parser), then
# prints executions, corpus size and crashes per harness and a last line
# "N passed, M failed, K skipped" (a harness that crashed is a failure).
# A crashing input is saved as tests/fuzz/crashes/<harness>-crash-<sha1> with its log beside
# it (.log); replay it with: build/fuzz/<harness> tests/fuzz/crashes/<file>
#
# Usage: tests/fuzz/run.sh SECONDS [BINDIR]       (BINDIR defaults to build/fuzz)
#        tests/fuzz/run.sh replay [BINDIR]        runs every harness once over its committed corpus
#                                                 and tests/fuzz/crashes (a quick regression check)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
MODE=${1:-30}
BIN=$(cd "${2:-build/fuzz}" 2>/dev/null && pwd) || { echo "no harnesses in ${2:-build/fuzz}: run make fuzz-build" >&2; exit 2; }
CRASHES=$ROOT/tests/fuzz/crashes
mkdir -p "$CRASHES"
HARNESSES="fuzz_config fuzz_policy fuzz_elf fuzz_trace fuzz_pressure"
pass=0 failn=0 skipn=0

seed_dir() { # HARNESS: the committed corpus
    case $1 in
        fuzz_config) echo "$ROOT/tests/fuzz/corpus/config" ;;
        fuzz_policy) echo "$ROOT/tests/fuzz/corpus/policy" ;;
        fuzz_elf) echo "$ROOT/tests/fuzz/corpus/elf" ;;
        fuzz_trace) echo "$ROOT/tests/fuzz/corpus/trace" ;;
        fuzz_pressure) echo "$ROOT/tests/fuzz/corpus/pressure" ;;
    esac
}

for h in $HARNESSES; do
    if [[ ! -x $BIN/$h ]]; then echo "SKIP $h (not built)"; skipn=$((skipn + 1)); continue; fi
    seeds=$(seed_dir "$h")
    log=$BIN/$h.log
    if [[ $MODE == replay ]]; then
        files=("$seeds"/*)
        for c in "$CRASHES/$h"-*; do [[ -f $c && $c != *.log ]] && files+=("$c"); done
        if "$BIN/$h" -runs=1 "${files[@]}" >"$log" 2>&1; then
            pass=$((pass + 1)); echo "PASS $h (replayed ${#files[@]} inputs)"
        else
            failn=$((failn + 1)); echo "FAIL $h (an input crashes; see $log)"
            grep -m3 -E 'ERROR|contract broken|Running:' "$log" | sed 's/^/    /'
        fi
        continue
    fi
    work=$BIN/corpus-$h
    mkdir -p "$work"
    if [[ $h == fuzz_config ]]; then
        cp "$ROOT"/conf/*.ini "$work/" 2>/dev/null
        for f in "$ROOT"/tests/fixtures/*.ini; do [[ -f $f ]] && cp "$f" "$work/fixture-$(basename "$f")"; done
    fi
    before=$(ls "$work" | wc -l)
    "$BIN/$h" -max_total_time="$MODE" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$CRASHES/$h-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1)
    after=$(ls "$work" | wc -l)
    crashfile=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    if ((rc == 0)); then
        pass=$((pass + 1))
        echo "PASS $h (${execs:-?} executions in ${MODE}s, ${cov:-cov: ?}, corpus $before -> $after units, 0 crashes)"
    else
        failn=$((failn + 1))
        echo "FAIL $h (${execs:-?} executions, 1 crash: ${crashfile:-no input saved}; log: $log)"
        [[ -n $crashfile ]] && cp "$log" "$crashfile.log"
        grep -m5 -E 'ERROR: |contract broken|SUMMARY|#[0-9]+ in ' "$log" | sed 's/^/    /'
    fi
done
echo "$pass passed, $failn failed, $skipn skipped"
((failn == 0))
