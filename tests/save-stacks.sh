#!/usr/bin/env bash
# save-stacks.sh: appends every thread's stack of every process below ROOTPID (its children and
# their children, three levels: timeout(1) -> program -> fork children) to OUTFILE. Used by the
# test runners' watchdogs shortly before a hung test is killed.
#
# Usage: tests/save-stacks.sh OUTFILE ROOTPID [SECONDS]
#   SECONDS: the most each attach may take (default 3). eu-stack (elfutils) first: it reads the
#   stacks through ptrace and unwinds with the ELF/DWARF data, without gdb's start-up and
#   without its hangs on attach (gdb 13 has been seen to hang attaching to a deadlocked
#   hakmem process, so the stacks never arrived). gdb is the fallback when eu-stack is missing or
#   shows no frame; both run under timeout -k 1, so this script never outlives its budget by much.
# Exit status: 0 when at least one stack was saved.
set -u
out=$1 root=$2 limit=${3:-3}
command -v pgrep >/dev/null || { echo "save-stacks: pgrep missing (procps)" >>"$out"; exit 1; }
pids=() level=("$root")
for _ in 1 2 3; do
    next=()
    for p in "${level[@]}"; do
        for c in $(pgrep -P "$p"); do next+=("$c"); done
    done
    ((${#next[@]})) || break
    pids+=("${next[@]}")
    level=("${next[@]}")
done
saved=0
for p in "${pids[@]}"; do
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)
    [[ -n $cmd ]] || continue # gone already
    echo "==== pid $p: $cmd" >>"$out"
    if command -v eu-stack >/dev/null; then
        tmp=$(mktemp) || exit 1
        timeout -k 1 "$limit" eu-stack -s -n 40 -p "$p" >"$tmp" 2>&1
        rc=$?
        # 0: every frame shown; 1: some frames missing (still a useful stack). Anything else,
        # or no frame at all ("#0 ..."): try gdb.
        if ((rc <= 1)) && grep -q '^#0 ' "$tmp"; then
            echo "(eu-stack, exit $rc)" >>"$out"
            cat "$tmp" >>"$out"
            rm -f "$tmp"
            saved=1
            continue
        fi
        echo "(eu-stack failed, exit $rc: $(head -n1 "$tmp" | cut -c1-160); trying gdb)" >>"$out"
        rm -f "$tmp"
    fi
    if command -v gdb >/dev/null; then
        timeout -k 1 "$limit" gdb -p "$p" -batch -nx -ex "thread apply all bt 30" >>"$out" 2>&1
        rc=$?
        if ((rc == 0)); then saved=1; else echo "(gdb failed, exit $rc)" >>"$out"; fi
    else
        echo "(neither eu-stack nor gdb could show the stacks)" >>"$out"
    fi
done
((saved))
