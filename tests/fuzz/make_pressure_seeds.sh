#!/usr/bin/env bash
# Writes the seeds of fuzz_pressure into tests/fuzz/corpus/pressure/ from the samples in
# tests/fixtures/pressure/: byte 0 picks the parser (0 PSI, 1 /proc/self/cgroup, 2 one value,
# 3 keyed file), the rest is the file. Run from anywhere; the output is committed.
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
F=$ROOT/tests/fixtures/pressure
OUT=$ROOT/tests/fuzz/corpus/pressure
mkdir -p "$OUT"
seed() { # SELECTOR FILE NAME
    { printf "\\$(printf '%03o' "$1")"; cat "$2"; } >"$OUT/$3"
}
seed 0 "$F/recorded/pressure-memory.vm-6.18" psi-quiet
seed 0 "$F/recorded/pressure-memory.vm-6.18.oom-loop" psi-oom-loop
seed 0 "$F/kernel-format/pressure-memory.busy" psi-busy
seed 1 "$F/recorded/proc-self-cgroup.hybrid-v1-memory" cgroup-hybrid
seed 1 "$F/kernel-format/v2.proc-self-cgroup" cgroup-v2
seed 2 "$F/kernel-format/v2.memory.current" value-current
seed 2 "$F/kernel-format/v2.memory.high" value-max
seed 2 "$F/recorded/v1.memory.limit_in_bytes" value-v1-unlimited
seed 3 "$F/recorded/meminfo.vm-6.18" keyed-meminfo
seed 3 "$F/kernel-format/v2.memory.events" keyed-events
