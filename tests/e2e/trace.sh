#!/usr/bin/env bash
# tests/e2e/trace.sh: recording (HAKMEM_TRACE, [core] trace, `hakmem record`) and replaying
# (`hakmem replay`), end to end. Records tests/e2e/trace_prog (threads in waves, cross-thread
# frees, reallocs that stay and that move, the memalign family, sized frees, a fork), checks what
# the trace holds against what the program did, replays it under two configurations and under
# glibc and checks that each replay made exactly the recorded operations with no corruption; then
# the failure cases: an unwritable file, a full disk, a file size limit, another format version,
# a main thread that calls pthread_exit. Prints PASS/FAIL lines and "N passed, M failed".
#
#   tests/e2e/trace.sh [BINDIR]     (BINDIR: build/tests/e2e)     KEEP=1 keeps the folder
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BIN=$(cd "${1:-build/tests/e2e}" 2>/dev/null && pwd) || { echo "no test binaries: run make e2e-progs" >&2; exit 2; }
REPLAYER=$ROOT/build/bin/hakmem-replay
[[ -x $BIN/trace_prog && -x $ROOT/build/bin/hakmem && -x $REPLAYER && -f build/libhakmem.so ]] ||
    { echo "trace.sh: build first (make all e2e-progs)" >&2; exit 2; }
# In the build folder: configurations in an open folder such as /tmp are refused.
mkdir -p "$ROOT/build/tests" && T=$(mktemp -d "$ROOT/build/tests/trace.XXXXXX") && chmod go-w "$T" || exit 2
[[ -n ${KEEP:-} ]] && echo "folder: $T" || trap 'rm -rf "$T"' EXIT
unset HAKMEM_TRACE HAKMEM_TRACE_SESSION HAKMEM_CONF HAKMEM_STATS LD_PRELOAD

# A snapshot of the library, the plugins and the configurations (others may rebuild meanwhile).
S=$T/snap
mkdir -p "$S/build" "$S/conf"
cp build/libhakmem.so "$S/build/" && cp -r build/policies "$S/build/" && cp conf/*.ini "$S/conf/" || exit 2
mkdir -p "$S/build/bin" && cp build/bin/hakmem build/bin/hakmem-replay "$S/build/bin/" || exit 2
chmod -R go-w "$S"
LIB=$S/build/libhakmem.so
HAK=$S/build/bin/hakmem
REPLAYER=$S/build/bin/hakmem-replay
# The snapshot's hakmem finds the driver through <bin>/../../tools: point it at the checkout's.
mkdir -p "$S/tools" && cp tools/hakmem_replay.py "$S/tools/" && mkdir -p "$S/bench" && cp bench/run.py "$S/bench/"

pass=0 failn=0
ok() { pass=$((pass + 1)); echo "PASS $1${2:+ ($2)}"; }
bad() { failn=$((failn + 1)); echo "FAIL $1: $2"; }

# one_line FILE PATTERN: the file holds exactly one line, a hakmem: one matching PATTERN.
one_line() {
    [[ $(wc -l <"$1") -eq 1 ]] && grep -qE "^hakmem: $2" "$1"
}

# ---- record --------------------------------------------------------------------------------
timeout -k 5 120 "$HAK" --lib "$LIB" record -o "$T/t.trace" -c "$S/conf/hakmem.ini" -- "$BIN/trace_prog" \
    >"$T/prog.out" 2>"$T/prog.err"
rc=$?
if ((rc != 0)); then bad "record" "exit $rc: $(head -c 300 "$T/prog.err")"
elif [[ -s $T/prog.err ]]; then bad "record" "stderr not empty: $(head -c 300 "$T/prog.err")"
else ok "record" "$(ls -l "$T/t.trace" | awk '{print $5}') bytes"; fi

"$REPLAYER" --info "$T/t.trace" >"$T/info.json" 2>"$T/info.err" || bad "info" "exit $?: $(head -c 300 "$T/info.err")"
why=$(python3 - "$T/info.json" "$T/prog.out" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
procs = [l for l in lines if not l.get("file")]
summary = [l for l in lines if l.get("file")][0]
own = dict(kv.split("=") for kv in open(sys.argv[2]).read().split(": ", 1)[1].split())
errs = []
if summary["error"]:
    errs.append("file: " + summary["error"])
if len(procs) != 2:
    errs.append(f"{len(procs)} processes, want 2 (the program and its fork child)")
else:
    p, c = procs
    if p["forked"] or not c["forked"] or c["parent"] != p["pkey"] or c["fork_number"] != 1 or not c["fork_thread"]:
        errs.append(f"fork child not linked to its parent: {c}")
    ops = p["ops"]
    if ops["fork"] != 1:
        errs.append(f"fork events {ops['fork']}, want 1")
    if p["threads"] < 17 or ops["thread_end"] < 16:
        errs.append(f"{p['threads']} threads, {ops['thread_end']} thread ends: threads in waves lost")
    if ops["realloc"] == 0 or ops["realloc_moved"] == 0:
        errs.append("reallocs in place and moved: both wanted")
    want = {"malloc": int(own["malloc"]), "free": int(own["free"]), "calloc": int(own["calloc"]),
            "memalign": int(own["memalign"]), "free_sized": int(own["free_sized"]),
            "realloc": int(own["realloc"])}
    got = dict(ops, realloc=ops["realloc"] + ops["realloc_moved"])
    for k, v in want.items():
        if got[k] < v:
            errs.append(f"{k}: the trace holds {got[k]}, the program made {v}")
    for q in procs:
        if not q["ended"]:
            errs.append(f"process {q['index']} has no END record")
        elif any(q["recorder"][k] != q["ops"][k] for k in q["ops"]):
            errs.append(f"process {q['index']}: recorder counts {q['recorder']} differ from the events {q['ops']}")
    if c["ops"]["malloc"] == 0 or c["ops"]["free"] == 0:
        errs.append("the fork child recorded nothing")
print("; ".join(errs) if errs else
      f"{procs[0]['events']} + {procs[1]['events']} operations, {procs[0]['threads']} threads, fork child linked")
sys.exit(1 if errs else 0)
EOF
) && ok "trace holds what the program did" "$why" || bad "trace holds what the program did" "$why"

# ---- replay under two configurations and glibc ------------------------------------------------
mkdir -p "$T/r"
timeout -k 5 600 "$HAK" --lib "$LIB" replay "$T/t.trace" --config "$S/conf/option-f.ini" \
    --config "$S/conf/option-g.ini" --alloc glibc --runs 1 --out "$T/r" --no-plot >"$T/replay.out" 2>"$T/replay.err"
rc=$?
if ((rc != 0)); then
    bad "replay" "exit $rc: $(grep -A3 '## Failures' "$T/replay.out" | tail -3 | cut -c1-300) $(tail -c 300 "$T/replay.err")"
else
    why=$(python3 - "$T/info.json" "$T"/r/*.json <<'EOF'
import json, sys
procs = [json.loads(l) for l in open(sys.argv[1]) if '"file":true' not in l]
runs = json.load(open(sys.argv[2]))
ops = ["malloc", "free", "calloc", "realloc", "realloc_moved", "memalign", "free_sized", "trim", "thread_end", "fork"]
want = {k: sum(p["ops"][k] for p in procs) for k in ops}
errs, seen = [], set()
for r in runs:
    seen.add(r["allocator"])
    if r["status"] != "ok":
        errs.append(f"{r['allocator']}: {r['reason']}")
        continue
    got = {k: int(float(r["result"][k])) for k in ops}
    if got != want:
        errs.append(f"{r['allocator']}: replayed {got}, recorded {want}")
    if r["allocator"] == "hakmem-option-g" and not (r["hakmem"] or {}).get("frees", {}).get("remote"):
        errs.append("option-g: no remote frees: the cross-thread frees were not replayed as such")
if seen != {"hakmem-option-f", "hakmem-option-g", "glibc"}:
    errs.append(f"allocators run: {sorted(seen)}")
print("; ".join(errs) if errs else f"3 allocators, each replayed exactly {sum(want.values())} operations")
sys.exit(1 if errs else 0)
EOF
) && ok "replay: option-f, option-g, glibc" "$why" || bad "replay: option-f, option-g, glibc" "$why"
fi

# The replay with recorded times, and one process only.
timeout -k 5 300 "$HAK" --lib "$LIB" replay "$T/t.trace" --alloc glibc --runs 1 --timed --process 2 \
    --out "$T/r" --no-plot >"$T/timed.out" 2>&1 && ok "replay --timed --process 2" ||
    bad "replay --timed --process 2" "exit $?: $(tail -c 300 "$T/timed.out")"

# ---- [core] trace, relative to the INI file's folder; main thread ending with pthread_exit ----
mkdir -p "$T/ini"
{ echo "[core]"; echo "policy_dir = $S/build/policies"; echo "trace = via-ini.trace"; } >"$T/ini/t.ini"
chmod go-w "$T/ini/t.ini"
(cd / && timeout -k 5 60 env HAKMEM_CONF="$T/ini/t.ini" LD_PRELOAD="$LIB" "$BIN/trace_prog" pexit \
    >"$T/pexit.out" 2>"$T/pexit.err")
rc=$?
if ((rc != 0)); then bad "[core] trace, pthread_exit" "exit $rc ($( ((rc == 124)) && echo 'hung: the process did not end after pthread_exit')): $(head -c 200 "$T/pexit.err")"
elif [[ -s $T/pexit.err ]]; then bad "[core] trace, pthread_exit" "stderr: $(head -c 200 "$T/pexit.err")"
elif ! "$REPLAYER" --info "$T/ini/via-ini.trace" >"$T/pexit.json" 2>&1; then bad "[core] trace, pthread_exit" "trace: $(head -c 200 "$T/pexit.json")"
elif ! python3 -c '
import json, sys
p = [json.loads(l) for l in open(sys.argv[1]) if "\"file\":true" not in l][0]
sys.exit(0 if p["ended"] and p["threads"] >= 18 else 1)' "$T/pexit.json"; then bad "[core] trace, pthread_exit" "the late worker or the END record is missing: $(head -c 300 "$T/pexit.json")"
else ok "[core] trace (relative to the INI), main thread pthread_exit" "the process ended, END written"; fi

# ---- a thread still allocating when the process exits: what it recorded is written -------------
timeout -k 5 60 env HAKMEM_TRACE="$T/running.trace" LD_PRELOAD="$LIB" HAKMEM_CONF="$S/conf/hakmem.ini" \
    "$BIN/trace_prog" running >"$T/running.out" 2>"$T/running.err"
rc=$?
if ((rc != 0)) || [[ -s $T/running.err ]]; then bad "thread running at exit" "exit $rc: $(head -c 200 "$T/running.err")"
elif ! "$REPLAYER" --info "$T/running.trace" >"$T/running.json" 2>&1; then bad "thread running at exit" "$(head -c 300 "$T/running.json")"
elif ! python3 -c '
import json, sys
ps = [json.loads(l) for l in open(sys.argv[1]) if "\"file\":true" not in l]
p = ps[0]
# the spinner made at least 1000 mallocs before main returned; its thread never ended
sys.exit(0 if p["ended"] and p["threads"] - p["ops"]["thread_end"] >= 2 and p["ops"]["malloc"] > 1000 + 15000 else 1)' "$T/running.json"; then
    bad "thread running at exit" "its events or the END record are missing: $(head -c 400 "$T/running.json")"
elif ! timeout -k 5 120 "$REPLAYER" "$T/running.trace" >"$T/running.replay" 2>&1; then bad "thread running at exit" "replay: $(head -c 300 "$T/running.replay")"
else ok "thread running at exit" "its events and the END record are written; the trace replays"; fi

# ---- failures: one line, no recording, the program unharmed ------------------------------------
try_fail() { # NAME PATTERN [ulimit -f KB] -- HAKMEM_TRACE value
    local name=$1 pat=$2 lim=$3 file=$4
    ( [[ $lim != - ]] && ulimit -f "$lim"; timeout -k 5 60 env HAKMEM_TRACE="$file" LD_PRELOAD="$LIB" \
        HAKMEM_CONF="$S/conf/hakmem.ini" "$BIN/trace_prog" >"$T/$name.out" 2>"$T/$name.err" )
    local rc=$?
    if ((rc != 0)); then bad "$name" "exit $rc: $(head -c 300 "$T/$name.err")"
    elif ! grep -q "^trace_prog: " "$T/$name.out"; then bad "$name" "the program did not finish"
    elif ! one_line "$T/$name.err" "$pat"; then bad "$name" "want one line 'hakmem: $pat', got: $(head -c 300 "$T/$name.err")"
    else ok "$name" "$(cut -c1-110 "$T/$name.err")"; fi
}
try_fail "unwritable file" "trace .*: cannot open: No such file or directory; not recording" - /nonexistent/dir/t.trace
mkfifo "$T/fifo"
try_fail "a FIFO nobody reads" "trace .*/fifo: cannot open: No such device or address; not recording" - "$T/fifo"
try_fail "full disk" "trace /dev/full: cannot write: No space left on device; not recording" - /dev/full
try_fail "file size limit" "trace .*: write failed: File too large; recording stopped, the program goes on" 64 "$T/small.trace"
"$REPLAYER" --info "$T/small.trace" >"$T/small.json" 2>"$T/small.err"
rc=$?
((rc == 0)) && grep -q '"processes":1' "$T/small.json" && ok "a trace cut short still reads" "$(cut -c1-120 "$T/small.err")" ||
    bad "a trace cut short still reads" "exit $rc: $(head -c 300 "$T/small.err")"

# ---- another format version: refused with a clear line ------------------------------------------
cp "$T/t.trace" "$T/v2.trace"
printf '\x02' | dd of="$T/v2.trace" bs=1 seek=8 conv=notrunc status=none
"$REPLAYER" --info "$T/v2.trace" >/dev/null 2>"$T/v2.err"
rc=$?
((rc == 6)) && grep -q "trace format version 2, this hakmem reads version 1" "$T/v2.err" &&
    ok "format version 2 refused" "$(cut -c1-120 "$T/v2.err")" || bad "format version 2 refused" "exit $rc: $(head -c 300 "$T/v2.err")"
"$HAK" --lib "$LIB" replay "$T/v2.trace" --alloc glibc >/dev/null 2>"$T/v2r.err"
rc=$?
((rc != 0)) && grep -q "format version 2" "$T/v2r.err" && ok "hakmem replay refuses it too" ||
    bad "hakmem replay refuses it too" "exit $rc: $(head -c 300 "$T/v2r.err")"
"$HAK" record -o /nonexistent/dir/t.trace -- true 2>"$T/rec.err"
rc=$?
((rc == 2)) && grep -q "^hakmem: record -o /nonexistent/dir/t.trace: cannot write in" "$T/rec.err" &&
    ok "record -o into a missing folder: usage error" || bad "record -o into a missing folder" "exit $rc: $(cat "$T/rec.err")"

echo "$pass passed, $failn failed"
((failn == 0))
