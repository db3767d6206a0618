#!/usr/bin/env python3
"""The benchmark lab runner: runs the workload programs of build/bench/ under every allocator
(glibc, hakmem under each conf/*.ini, and mimalloc/jemalloc/tcmalloc through LD_PRELOAD), repeats
each cell, and writes Markdown tables, raw CSV/JSON and a gnuplot plot to bench/results/.

Modes:  quick      short runs, the whole matrix in under a minute (threads 1 and 4)
        full       the whole matrix, threads 1, 2, 4, 8, then instruction counts (~35 min)
        callgrind  instructions per malloc+free pair on `churn`, under valgrind --tool=callgrind
        traces     real programs (gcc, python3, sqlite3) recorded with HAKMEM_TRACE and replayed
                   under every allocator (tools/hakmem_replay.py); also the last section of full
        larson     the core issue's Larson targets: 4 threads, 8-128 B, 1024 blocks, 60 s
        demo       Larson for 10 s under glibc and hakmem (conf/hakmem.ini), side by side
        bursts     memory freed in bursts and allocated again soon (build/bench/bursts) under the
                   trim policies none / idle / eager / decay: minor faults, RSS over time, and
                   one plot of the RSS curves (the case trim by decay is for)
Every run also reports the measured process's rusage (os.wait4): user and system CPU seconds,
minor faults, voluntary and involuntary context switches; the report turns them into CPU time
per op and its ratio to the best peer, the figure to trust on a loaded machine (bench/README.md).
Python standard library only; gnuplot draws the plot when it is installed.
"""

import argparse
import csv
import datetime
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_BIN = os.path.join(ROOT, "build", "bench")
HAKMEM_LIB = os.path.join(ROOT, "build", "libhakmem.so")
CONF_DIR = os.path.join(ROOT, "conf")
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = [  # label, library, Debian package
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]
PEER_INSTALL = "apt-get install -y libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4"

# Exit codes of bench_util.h, as FAIL reasons.
EXIT_REASONS = {2: "usage", 3: "corrupt", 4: "ENOMEM", 5: "system"}
LARSON_ARGS = ["8", "128", "1024", "100", "4141"]  # MIN MAX BLOCKS ROUNDS SEED
# mimalloc-bench's server-sized Larson (`larson 5 8 1000 5000 100 4141 T`), issue 12's first row.
LARSON_SERVER_ARGS = ["8", "1000", "5000", "100", "4141"]


# ---- allocators ---------------------------------------------------------------------------


@dataclass
class Allocator:
    label: str
    kind: str                    # "glibc", "hakmem" or "peer"
    preload: str = ""            # library for LD_PRELOAD ("" for glibc)
    conf: str = ""               # HAKMEM_CONF for hakmem ("" = built-in defaults)

    def env(self):
        """The child's environment: ours without any allocator settings, plus this one's."""
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("HAKMEM_")}
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        if self.kind == "hakmem":
            env["HAKMEM_STATS"] = "json"
            if self.conf:
                env["HAKMEM_CONF"] = self.conf
        return env

    def shell_prefix(self):
        """How a human reproduces this allocator's environment on a command line."""
        parts = []
        if self.conf:
            parts.append("HAKMEM_CONF=" + os.path.relpath(self.conf, ROOT))
        if self.kind == "hakmem":
            parts.append("HAKMEM_STATS=json")
        if self.preload:
            lib = self.preload
            if lib.startswith(ROOT + os.sep):
                lib = "$PWD/" + os.path.relpath(lib, ROOT)
            parts.append("LD_PRELOAD=" + lib)
        return " ".join(parts)


def hakmem_label(ini):
    base = os.path.splitext(os.path.basename(ini))[0]
    return "hakmem-default" if base == "hakmem" else "hakmem-" + base


def discover_allocators(hakmem_lib=HAKMEM_LIB, conf_dir=CONF_DIR):
    """Returns (allocators, notes); notes say what is missing and how to get it."""
    allocs = [Allocator("glibc", "glibc")]
    notes = []
    if os.path.exists(hakmem_lib):
        inis = sorted(f for f in os.listdir(conf_dir) if f.endswith(".ini")) \
            if os.path.isdir(conf_dir) else []
        # The default configuration first, then the others alphabetically.
        inis.sort(key=lambda f: (f != "hakmem.ini", f))
        for ini in inis:
            path = os.path.join(conf_dir, ini)
            allocs.append(Allocator(hakmem_label(path), "hakmem", hakmem_lib, path))
        if not inis:
            allocs.append(Allocator("hakmem-builtin", "hakmem", hakmem_lib))
            notes.append("hakmem: no conf/*.ini found; running hakmem on its built-in defaults")
    else:
        notes.append(f"hakmem: {os.path.relpath(hakmem_lib, ROOT)} is MISSING (run `make`; the core "
                     "may not build yet): hakmem columns are skipped")
    missing = []
    for label, lib, pkg in PEERS:
        path = os.path.join(LIBDIR, lib)
        if os.path.exists(path):
            allocs.append(Allocator(label, "peer", path))
        else:
            missing.append(f"{label} ({path}, package {pkg})")
    if missing:
        notes.append("peers missing: " + ", ".join(missing) + "; install them with: "
                     + PEER_INSTALL)
    return allocs, notes


def select_allocators(allocs, wanted):
    """--alloc a,b keeps those labels; 'hakmem' stands for every hakmem-* column."""
    if not wanted:
        return allocs
    names = set(wanted.split(","))
    keep = [a for a in allocs if a.label in names or (a.kind == "hakmem" and "hakmem" in names)]
    unknown = names - {a.label for a in keep} - {"hakmem"}
    if unknown:
        print("run.py: no such allocator here: " + ", ".join(sorted(unknown))
              + " (have: " + ", ".join(a.label for a in allocs) + ")", file=sys.stderr)
    return keep


# ---- workloads ----------------------------------------------------------------------------


@dataclass
class Workload:
    name: str                    # row label
    prog: str                    # program in build/bench/
    args: object                 # (seconds, threads) -> argv after the program
    unit: str                    # what one op is, for the tables
    scale: float                 # ops/s divided by this gives the unit
    threads: tuple = (1,)        # thread counts the full matrix runs
    quick_threads: tuple = (1,)
    doc: str = ""
    min_secs: float = 0.0        # shortest run that still counts enough ops
    setup_guess: float = 0.03    # seconds a run costs beyond SECONDS, until measured


def secs_arg(s):
    return f"{s:.3g}"


def mstress_args(s, t):
    """mstress does fixed work: ITER rounds of T threads, thread i doing (i % 8 + 1) shares.
    About 100 rounds of 4 threads (mimalloc-bench's `mstress 4 50 100`) take a second, so the
    rounds are fitted to the run length; SCALE stays mimalloc-bench's 50."""
    if not isinstance(t, int):  # the report's "T": say how ITER is chosen
        return [str(t), "50", f"ITER (about {s * 1000:.0f} / the sum of i % 8 + 1 over threads)"]
    weight = sum(i % 8 + 1 for i in range(t))
    return [str(t), "50", str(max(1, round(s * 1000 / weight)))]


WORKLOADS = [
    Workload("larson", "larson", lambda s, t: [secs_arg(s), *LARSON_ARGS, str(t)],
             "M ops/s", 1e6, (1, 2, 4, 8), (1, 4),
             "Larson server churn, 8-128 B, 1024 blocks per thread, hand-off to a new thread "
             "every 100 rounds; op = free+malloc"),
    Workload("prodcons", "prodcons", lambda s, t: [secs_arg(s), str(t)],
             "M blocks/s", 1e6, (1, 2, 4, 8), (1, 4),
             "threads = producer/consumer PAIRS, 16-2048 B, up to 65536 blocks in flight; "
             "op = one block allocated by a producer and freed by a consumer"),
    Workload("threadchurn", "threadchurn", lambda s, t: [secs_arg(s), str(t)],
             "k threads/s", 1e3, (1, 2, 4, 8), (1, 4),
             "threads = concurrent short-lived threads; each frees a dead thread's leftovers, "
             "allocates 64 blocks of 16-1024 B and leaves 32 live; op = one thread"),
    Workload("falseshare", "falseshare", lambda s, t: [secs_arg(s), str(t)],
             "G writes/s", 1e9, (1, 2, 4, 8), (1, 4),
             "passive false sharing (Hoard cache-scratch): 8 B blocks, 10000 writes per "
             "malloc; op = one byte written"),
    Workload("sizesweep-small", "sizesweep", lambda s, t: [secs_arg(s), "16", "1024"],
             "M pairs/s", 1e6, doc="single thread, 16 B-1 KB ladder; geometric mean of per-size "
             "free+malloc rates"),
    Workload("sizesweep-medium", "sizesweep", lambda s, t: [secs_arg(s), "1024", "65536"],
             "M pairs/s", 1e6, doc="single thread, 1-64 KB ladder, geometric mean"),
    Workload("sizesweep-large", "sizesweep", lambda s, t: [secs_arg(s), "65536", "1048576"],
             "M pairs/s", 1e6, doc="single thread, 64 KB-1 MB ladder, geometric mean"),
    Workload("realloc", "realloc", lambda s, t: [secs_arg(s), str(t)],
             "M reallocs/s", 1e6, (1, 2, 4, 8), (1, 4),
             "per thread 4 interleaved string builders growing by 1-64 B appends to 4 MB; "
             "op = one realloc"),
    Workload("large", "large", lambda s, t: [secs_arg(s), str(t)],
             "ops/s", 1.0, (1, 2, 4, 8), (1, 4),
             "per thread 4 live blocks of 5-25 MB, every page touched; op = free+malloc",
             min_secs=0.15, setup_guess=0.15),
    Workload("mstress", "mstress", mstress_args, "M allocs/s", 1e6, (1, 2, 4, 8), (4,),
             "mimalloc-bench's mstress: rounds of T threads, 8 B-5 MB blocks (calloc), random "
             "lifetimes, a shared transfer array; fixed work (the rounds are fitted to the run "
             "length, `mstress 4 50 100` is about a second); op = one allocation",
             min_secs=0.1, setup_guess=0.05),
    Workload("larson-server", "larson", lambda s, t: [secs_arg(s), *LARSON_SERVER_ARGS, str(t)],
             "M ops/s", 1e6, (4,), (4,),
             "mimalloc-bench's Larson server: 8-1000 B, 5000 blocks per thread, hand-off to a "
             "new thread every 100 rounds; op = free+malloc"),
    Workload("bursts", "bursts", lambda s, t: [str(max(2, round(s / 0.25))), "64", "10", "200", "0"],
             "M allocs/s", 1e6, doc="single thread: 64 MB of 16-512 B blocks allocated and all "
             "freed per round, then 200 ms asleep, 10% of it live throughout (rounds fitted to "
             "the run length, about 0.25 s each); op = one allocation; watch minor faults",
             min_secs=0.5, setup_guess=0.1),
    Workload("prodcons-64", "prodcons", lambda s, t: [secs_arg(s), str(t), "64", "64"],
             "M blocks/s", 1e6, (2,), (2,),
             "xmalloc-test-like: threads = PAIRS (2 = 4 threads), 64 B blocks allocated by "
             "producers and freed by consumers; op = one block passed"),
]


# ---- running one program ------------------------------------------------------------------


@dataclass
class Run:
    status: str                  # "ok" or "FAIL"
    reason: str = ""             # why it failed
    result: dict = field(default_factory=dict)   # the RESULT line's key=value pairs
    hakmem: dict = None          # HAKMEM_STATS=json, when present
    wall: float = 0.0
    stderr_tail: str = ""        # a few stderr lines other than the stats JSON
    lib_stamp: int = 0           # mtime of the preloaded library when the run started
    rusage: dict = None          # the measured process's, from wait4: see RUSAGE_KEYS

    def num(self, key):
        """A RESULT figure, a rusage figure, or a derived one (cpu_secs, cpu_ns_per_op)."""
        if key in RUSAGE_KEYS or key in ("cpu_secs", "cpu_ns_per_op"):
            return self.cpu(key)
        try:
            return float(self.result[key])
        except (KeyError, ValueError):
            return None

    def cpu(self, key):
        if not self.rusage:
            return None
        if key in RUSAGE_KEYS:
            return float(self.rusage[key])
        cpu = self.rusage["user_secs"] + self.rusage["sys_secs"]
        if key == "cpu_secs":
            return cpu
        try:
            ops = float(self.result["ops"])
        except (KeyError, ValueError):
            return None
        return cpu * 1e9 / ops if ops > 0 else None


# What wait4 says about the measured process (and nothing else: the runner, timeout(1) and
# the shell are not in it): CPU seconds in user and kernel mode, minor page faults (pages first
# touched or reclaimed without I/O), voluntary context switches (the process blocked: a futex,
# a sleep, I/O) and involuntary ones (the scheduler took the CPU away: other load).
RUSAGE_KEYS = ("user_secs", "sys_secs", "minflt", "majflt", "nvcsw", "nivcsw")


def rusage_dict(ru):
    return {"user_secs": round(ru.ru_utime, 6), "sys_secs": round(ru.ru_stime, 6),
            "minflt": ru.ru_minflt, "majflt": ru.ru_majflt, "nvcsw": ru.ru_nvcsw,
            "nivcsw": ru.ru_nivcsw}


def parse_result(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return None


def parse_hakmem_stats(stderr):
    """The one JSON line hakmem prints at exit, or None; other lines are returned as notes."""
    stats, other = None, []
    for line in stderr.splitlines():
        if re.match(r'^\{"policies"', line):
            try:
                stats = json.loads(line)
            except json.JSONDecodeError:
                other.append("unparsable HAKMEM_STATS line: " + line[:120])
        elif line.strip():
            other.append(line.strip())
    return stats, other


def run_program(alloc, argv, timeout):
    """Runs argv under alloc; never raises for the child's failures. The child is reaped with
    os.wait4, so the run carries its own rusage; its output goes through temporary files (no
    pipe to keep draining while we wait), and a timer kills it at the timeout."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, env=alloc.env(), stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, cwd=ROOT)
        except OSError as e:
            return Run("FAIL", f"exec: {e.strerror}", wall=time.monotonic() - start)
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                proc.kill()
            except OSError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
        wall = time.monotonic() - start
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        usage = rusage_dict(ru)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if timed_out:
        return Run("FAIL", f"timeout {timeout:.0f}s", wall=wall, stderr_tail=stderr[-300:],
                   rusage=usage)
    stats, other = parse_hakmem_stats(stderr)
    tail = "\n".join(other[-3:])
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return Run("FAIL", name, hakmem=stats, wall=wall, stderr_tail=tail, rusage=usage)
    if rc != 0:
        return Run("FAIL", EXIT_REASONS.get(rc, f"exit {rc}"), hakmem=stats, wall=wall,
                   stderr_tail=tail, rusage=usage)
    result = parse_result(stdout)
    if result is None:
        return Run("FAIL", "no RESULT line", hakmem=stats, wall=wall, stderr_tail=tail,
                   rusage=usage)
    return Run("ok", result=result, hakmem=stats, wall=wall, stderr_tail=tail, rusage=usage)


# ---- progress -----------------------------------------------------------------------------


class Progress:
    """One line on stderr, rewritten in place on a terminal; a line per step otherwise."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def step(self, what):
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0
        line = (f"[{self.done + 1}/{self.total}] {what}  elapsed {fmt_clock(elapsed)}"
                f"  eta {fmt_clock(eta)}")
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
            sys.stderr.flush()
        elif time.monotonic() - self.last_print > 10 or self.done == 0:
            print(line, file=sys.stderr, flush=True)
            self.last_print = time.monotonic()
        self.done += 1

    def finish(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
        print(f"done: {self.total} runs in {fmt_clock(time.monotonic() - self.start)}",
              file=sys.stderr, flush=True)


def fmt_secs_range(values):
    lo, hi = min(values), max(values)
    return f"{lo:.3g} s" if hi - lo < 0.005 else f"{lo:.3g}–{hi:.3g} s"


def fmt_clock(secs):
    secs = int(secs)
    return f"{secs // 60}:{secs % 60:02d}"


# ---- statistics and formatting ------------------------------------------------------------


def spread(values):
    """(median, min, max) of the values, or None."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt_num(x):
    if x is None:
        return "–"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def fmt_count(x):
    return "–" if x is None else f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def fmt_spread(s, scale=1.0):
    if s is None:
        return "–"
    med, lo, hi = (v / scale for v in s)
    return f"{fmt_num(med)} ({fmt_num(lo)}–{fmt_num(hi)})"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 else "--:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---- the matrix ---------------------------------------------------------------------------


class Cell:
    """All runs of one (workload, threads, allocator)."""

    def __init__(self):
        self.runs = []

    @property
    def failed(self):
        return [r for r in self.runs if r.status != "ok"]

    def fail_text(self):
        reasons = sorted({r.reason for r in self.failed})
        return f"FAIL {'/'.join(reasons)} ({len(self.failed)}/{len(self.runs)})"

    def stat(self, key):
        if not self.runs or self.failed:
            return None
        return spread([r.num(key) for r in self.runs])

    def hakmem_stat(self, *path):
        vals = []
        for r in self.runs:
            v = r.hakmem
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            if isinstance(v, (int, float)):
                vals.append(v)
        return spread(vals)


class Pacer:
    """Fits the matrix into a time budget. Before each row it solves for the per-run seconds
    that make the rows left (their runs, their measured set-up overhead, their minimum run
    length) end at the deadline, clamped to [lo, hi]. Every run of one row has the same length."""

    def __init__(self, budget, plan, lo, hi, fixed=None):
        self.deadline = time.monotonic() + budget
        self.plan = plan             # [(workload, threads, runs)] in running order
        self.lo, self.hi, self.fixed = lo, hi, fixed
        self.overheads = {}          # (workload name, threads) -> [seconds beyond SECONDS]

    def overhead(self, w, t):
        seen = self.overheads.get((w.name, t))
        return statistics.mean(seen) if seen else w.setup_guess

    def row_seconds(self, row):
        if self.fixed:
            return self.fixed
        rest = self.plan[row:]
        left = self.deadline - time.monotonic() - sum(n * self.overhead(w, t) for w, t, n in rest)
        secs = self.hi
        for _ in range(4):  # rows whose minimum exceeds the guess cost their minimum
            floored = sum(n * w.min_secs for w, t, n in rest if w.min_secs > secs)
            free = sum(n for w, t, n in rest if w.min_secs <= secs)
            secs = max(self.lo, min(self.hi, (left - floored) / max(1, free)))
        return max(secs, rest[0][0].min_secs)

    def ran(self, w, t, run, secs):
        self.overheads.setdefault((w.name, t), []).append(max(0.0, run.wall - secs))


def library_stamp(alloc):
    try:
        return os.stat(alloc.preload).st_mtime_ns if alloc.kind == "hakmem" else 0
    except OSError:
        return -1


def rebuilt_note(cells):
    """Other people rebuild build/libhakmem.so while we run: say so, the columns mix builds."""
    stamps = sorted({r.lib_stamp for c in cells.values() for r in c.runs if r.lib_stamp})
    if len(stamps) < 2:
        return None
    when = ", ".join(datetime.datetime.fromtimestamp(s / 1e9).strftime("%H:%M:%S")
                     for s in stamps[1:] if s > 0)
    return (f"the hakmem library was REBUILT during this run ({len(stamps)} versions seen; "
            f"new builds at {when or 'unknown times'}): hakmem cells mix builds, and a crash "
            "near a rebuild may come from the file changing under the run")


def run_matrix(rows, allocs, repeats, pacer):
    """Runs every (workload, threads) row; returns (row_secs, cells)."""
    cells = {(w.name, t, a.label): Cell() for w, t in rows for a in allocs}
    row_secs = {}
    progress = Progress(len(rows) * repeats * len(allocs))
    for i, (w, t) in enumerate(rows):
        secs = row_secs[(w.name, t)] = pacer.row_seconds(i)
        argv = [os.path.join(BENCH_BIN, w.prog)] + w.args(secs, t)
        timeout = 10 * secs + 10
        for rep in range(repeats):
            # Rotate the order each repetition so no allocator always runs right after another.
            order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
            for a in order:
                progress.step(f"{w.name} t={t} {a.label} rep {rep + 1}/{repeats} ({secs:.2g} s)")
                stamp = library_stamp(a)
                run = run_program(a, argv, timeout)
                run.lib_stamp = stamp
                pacer.ran(w, t, run, secs)
                cells[(w.name, t, a.label)].runs.append(run)
    progress.finish()
    return row_secs, cells


def best_peer(cells, wname, t, allocs, key, higher_better):
    """(label, median) of the best peer (mimalloc/jemalloc/tcmalloc) on this row, or None."""
    best = None
    for a in allocs:
        if a.kind != "peer":
            continue
        s = cells[(wname, t, a.label)].stat(key)
        if s and (best is None or (s[0] > best[1] if higher_better else s[0] < best[1])):
            best = (a.label, s[0])
    return best


def ratio_rows(rows, cells, allocs, key, higher_better):
    out = []
    for w, t in rows:
        glibc = cells[(w.name, t, "glibc")].stat(key)
        peer = best_peer(cells, w.name, t, allocs, key, higher_better)
        line = [w.name, str(t)]
        for a in allocs:
            s = cells[(w.name, t, a.label)].stat(key)
            if s is None:
                line.append("FAIL" if cells[(w.name, t, a.label)].failed else "–")
                continue
            vs_glibc = s[0] / glibc[0] if glibc and glibc[0] else None
            vs_peer = s[0] / peer[1] if peer and peer[1] else None
            line.append(f"{fmt_ratio(vs_glibc)} / {fmt_ratio(vs_peer)}")
        line.append(peer[0] if peer else "–")
        out.append(line)
    return out


def value_rows(rows, cells, allocs, key, scale, unit_of=None):
    out = []
    for w, t in rows:
        line = [w.name, str(t)]
        if unit_of:
            line.append(unit_of(w))
        for a in allocs:
            c = cells[(w.name, t, a.label)]
            line.append(c.fail_text() if c.failed else fmt_spread(c.stat(key),
                                                                  scale(w) if callable(scale)
                                                                  else scale))
        out.append(line)
    return out


def fmt_med(cell, key, scale=1.0, count=False):
    """The median of a rusage figure over the cell's runs (failed ones too: they ran)."""
    vals = [r.num(key) for r in cell.runs]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    med = statistics.median(vals) / scale
    return f"{med:.0f}" if count else fmt_num(med)


def rusage_rows(rows, cells, allocs, text_of):
    return [[w.name, str(t)] + [text_of(cells[(w.name, t, a.label)]) for a in allocs]
            for w, t in rows]


def hakmem_rows(rows, cells, allocs):
    out = []
    for w, t in rows:
        for a in allocs:
            if a.kind != "hakmem":
                continue
            c = cells[(w.name, t, a.label)]
            if not any(r.hakmem for r in c.runs):
                out.append([w.name, str(t), a.label, "no HAKMEM_STATS line"] + [""] * 6)
                continue

            def med(*path):
                s = c.hakmem_stat(*path)
                return fmt_count(s[0]) if s else "–"
            local, remote = c.hakmem_stat("frees", "local"), c.hakmem_stat("frees", "remote")
            remote_pct = "–"
            if local and remote and local[0] + remote[0] > 0:
                remote_pct = f"{100 * remote[0] / (local[0] + remote[0]):.0f}%"
            out.append([w.name, str(t), a.label, med("superslabs", "mapped"),
                        med("superslabs", "released"), med("superslabs", "live"),
                        med("superslabs", "peak_live"), remote_pct, med("adoptions"),
                        med("peak_mappings")])
    return out


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), Linux {os.uname().release}, {libc}, "
            f"load average {load}")


def policies_seen(cells, alloc):
    """What hakmem said it ran with, e.g. 'trim=idle superslab=fixed ownership=tls, 2 MB'."""
    for (_, _, label), c in cells.items():
        for r in c.runs:
            if label == alloc.label and r.hakmem:
                pol = r.hakmem.get("policies", {})
                text = " ".join(f"{k}={v.get('name')}" for k, v in pol.items()
                                if isinstance(v, dict))
                size = r.hakmem.get("superslabs", {}).get("size_bytes")
                if isinstance(size, int) and size:
                    text += f", SuperSlab {size / 1048576:g} MB"
                return text
    return ""


def write_report(mode, rows, row_secs, cells, allocs, notes, repeats, started, extra_md=""):
    labels = [a.label for a in allocs]
    head = [f"# hakmem benchmark lab: {mode}", "",
            f"- when: {started:%Y-%m-%d %H:%M:%S}, machine: {machine_info()}",
            f"- each cell: median of {repeats} run{'s' if repeats > 1 else ''} (min–max), each run "
            f"{fmt_secs_range(row_secs.values())} long (fitted to the time budget); a cell is FAIL "
            "if any run crashed, timed out, reported corruption or printed no result",
            "- allocators:"]
    for a in allocs:
        policies = policies_seen(cells, a) if a.kind == "hakmem" else ""
        head.append(f"  - {a.label}: `{a.shell_prefix() or 'no LD_PRELOAD'}`"
                    + (f"; reported {policies}" if policies else ""))
    head += [f"- note: {n}" for n in notes]
    md = "\n".join(head) + "\n"
    md += "\n## Throughput (median (min–max); higher is better)\n\n"
    md += md_table(["workload", "threads", "unit"] + labels,
                   value_rows(rows, cells, allocs, "ops_per_sec", lambda w: w.scale,
                              lambda w: w.unit)) + "\n"
    md += ("\n## Throughput relative to glibc / to the best peer (median over median; "
           "higher is better)\n\n")
    md += md_table(["workload", "threads"] + labels + ["best peer"],
                   ratio_rows(rows, cells, allocs, "ops_per_sec", True)) + "\n"
    md += ("\n## CPU time per op in ns (user + system CPU seconds of the measured process, from "
           "wait4, divided by its ops; median (min–max); lower is better)\n\n")
    md += md_table(["workload", "threads"] + labels,
                   value_rows(rows, cells, allocs, "cpu_ns_per_op", 1.0)) + "\n"
    md += ("\n## CPU time per op relative to glibc / to the best peer (lower is better; on a "
           "loaded machine trust this before the throughput ratios: see bench/README.md)\n\n")
    md += md_table(["workload", "threads"] + labels + ["best peer"],
                   ratio_rows(rows, cells, allocs, "cpu_ns_per_op", False)) + "\n"
    md += "\n## CPU seconds per run, user / system (medians)\n\n"
    md += md_table(["workload", "threads"] + labels,
                   rusage_rows(rows, cells, allocs, lambda c: (
                       f"{fmt_med(c, 'user_secs')} / {fmt_med(c, 'sys_secs')}"))) + "\n"
    md += ("\n## Minor page faults (thousands) / voluntary / involuntary context switches per "
           "run (medians)\n\n")
    md += md_table(["workload", "threads"] + labels,
                   rusage_rows(rows, cells, allocs, lambda c: (
                       f"{fmt_med(c, 'minflt', 1e3)} / {fmt_med(c, 'nvcsw', 1, True)} / "
                       f"{fmt_med(c, 'nivcsw', 1, True)}"))) + "\n"
    md += "\n## Peak RSS in MB (VmHWM; median (min–max); lower is better)\n\n"
    md += md_table(["workload", "threads"] + labels,
                   value_rows(rows, cells, allocs, "peak_rss_kb", 1024.0)) + "\n"
    md += "\n## Peak RSS relative to glibc / to the best peer (lower is better)\n\n"
    md += md_table(["workload", "threads"] + labels + ["best peer"],
                   ratio_rows(rows, cells, allocs, "peak_rss_kb", False)) + "\n"
    md += ("\n## At exit, after the workload freed everything: RSS in MB / mappings "
           "(lines of /proc/self/maps), medians\n\n")
    exit_rows = []
    for w, t in rows:
        line = [w.name, str(t)]
        for a in allocs:
            c = cells[(w.name, t, a.label)]
            rss, maps = c.stat("final_rss_kb"), c.stat("mappings")
            line.append("FAIL" if c.failed else
                        f"{fmt_num(rss[0] / 1024) if rss else '–'} / "
                        f"{f'{maps[0]:.0f}' if maps else '–'}")
        exit_rows.append(line)
    md += md_table(["workload", "threads"] + labels, exit_rows) + "\n"
    hk = hakmem_rows(rows, cells, allocs)
    if hk:
        md += ("\n## hakmem counters from HAKMEM_STATS=json (medians): SuperSlabs mapped / "
               "released / live at exit / peak live, share of remote frees, adoptions, "
               "peak mappings\n\n")
        md += md_table(["workload", "threads", "config", "mapped", "released", "live",
                        "peak live", "remote frees", "adoptions", "peak mappings"], hk) + "\n"
    fails = [(w, t, a, r) for w, t in rows for a in allocs
             for r in cells[(w.name, t, a.label)].failed]
    if fails:
        md += "\n## Failures\n\n"
        for w, t, a, r in fails[:60]:
            tail = r.stderr_tail.replace("\n", " | ")[:200]
            md += f"- {w.name} t={t} {a.label}: {r.reason}" + (f": `{tail}`" if tail else "") + "\n"
    stderr_notes = {}
    for (wname, t, label), c in cells.items():
        for r in c.runs:
            if r.stderr_tail and r.status == "ok":
                stderr_notes.setdefault(label, set()).update(r.stderr_tail.splitlines())
    if stderr_notes:
        md += "\n## What the allocators printed on stderr (first lines, deduplicated)\n\n"
        for label, lines in stderr_notes.items():
            for line in sorted(lines)[:3]:
                md += f"- {label}: `{line[:160]}`\n"
    md += extra_md
    md += "\n## Workloads\n\n"
    seen = set()
    for w, _ in rows:
        if w.name in seen:
            continue
        seen.add(w.name)
        argv = " ".join(w.args(row_secs[(w.name, _)], "T"))
        md += f"- **{w.name}** (`build/bench/{w.prog} {argv}`): {w.doc}\n"
    md += ("\nReproduce one cell: `make bench-progs && <allocator environment above> "
           "build/bench/<program> <arguments above>`; whole table: `make bench` or "
           "`make bench-quick` (`BENCH_ARGS=\"--help\"` lists the runner's options).\n")
    return md


def write_raw(stem, mode, rows, row_secs, cells, allocs):
    """<stem>.csv (one row per run) and <stem>.json (everything, RSS series included)."""
    records = []
    for w, t in rows:
        for a in allocs:
            for i, r in enumerate(cells[(w.name, t, a.label)].runs):
                records.append({"mode": mode, "workload": w.name, "program": w.prog,
                                "threads": t, "allocator": a.label, "rep": i + 1,
                                "secs_arg": row_secs[(w.name, t)], "status": r.status, "reason": r.reason,
                                "wall": round(r.wall, 3), "rusage": r.rusage,
                                "result": r.result, "hakmem": r.hakmem})
    with open(stem + ".json", "w") as f:
        json.dump(records, f, indent=1)
    keys = ["ops", "secs", "ops_per_sec", "peak_rss_kb", "final_rss_kb", "mappings"]
    with open(stem + ".csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["workload", "threads", "allocator", "rep", "status", "reason", *keys,
                      "wall", *RUSAGE_KEYS, "ss_mapped", "ss_released", "ss_live", "ss_peak_live", "frees_local",
                      "frees_remote"])
        for rec in records:
            hk = rec["hakmem"] or {}
            ss, fr = hk.get("superslabs", {}), hk.get("frees", {})
            out.writerow([rec["workload"], rec["threads"], rec["allocator"], rec["rep"],
                          rec["status"], rec["reason"], *(rec["result"].get(k, "") for k in keys),
                          rec["wall"], *((rec["rusage"] or {}).get(k, "") for k in RUSAGE_KEYS),
                          ss.get("mapped", ""), ss.get("released", ""), ss.get("live", ""),
                          ss.get("peak_live", ""), fr.get("local", ""), fr.get("remote", "")])


PEER_COLOURS = {"glibc": "#7f7f7f", "mimalloc": "#d62728", "jemalloc": "#ff7f0e",
                "tcmalloc": "#9467bd"}
HAKMEM_COLOURS = ["#1f77b4", "#17becf", "#2ca02c", "#98df8a", "#aec7e8", "#393b79", "#bcbd22",
                  "#8c564b", "#e377c2", "#637939"]


def colour_of(allocs):
    """Distinct colours: grey glibc, warm peers, blues and greens for the hakmem configs."""
    out, k = {}, 0
    for a in allocs:
        if a.label in PEER_COLOURS:
            out[a.label] = PEER_COLOURS[a.label]
        else:
            out[a.label] = HAKMEM_COLOURS[k % len(HAKMEM_COLOURS)]
            k += 1
    return out


def write_plot(stem, mode, rows, cells, allocs):
    """<stem>-throughput.png and <stem>-rss.png, one panel per workload with its thread counts on
    the x axis and a bar per allocator (median, whiskers min-max); data in <stem>.dat (one gnuplot
    index per workload), script in <stem>.gp. Returns None, or why there is no plot."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (apt-get install -y gnuplot-nox): no plot"

    def triple(s, div):
        return "NaN NaN NaN" if s is None else " ".join(f"{v / div:.6g}" for v in s)
    names = list(dict.fromkeys(w.name for w, _ in rows))
    by_name = {w.name: w for w, _ in rows}
    with open(stem + ".dat", "w") as f:
        f.write("# one index per workload; per row: threads, then per allocator throughput "
                "(in the workload's unit) median min max, then per allocator peak RSS MB "
                "median min max\n")
        for name in names:
            w = by_name[name]
            f.write(f"# {name}\n")
            for _, t in (r for r in rows if r[0].name == name):
                cols = [triple(cells[(name, t, a.label)].stat("ops_per_sec"), w.scale)
                        for a in allocs]
                cols += [triple(cells[(name, t, a.label)].stat("peak_rss_kb"), 1024.0)
                         for a in allocs]
                f.write(f'"{t}" ' + " ".join(cols) + "\n")
            f.write("\n\n")
    n = len(allocs)
    colours = colour_of(allocs)
    dat = os.path.basename(stem) + ".dat"
    cols_grid = 3
    rows_grid = (len(names) + 1 + cols_grid - 1) // cols_grid  # +1: the legend panel

    def panels(first_col, ylabel_of):
        out = []
        for i, name in enumerate(names):
            bars = []
            for j, a in enumerate(allocs):
                c = first_col + 3 * j
                src = f"'{dat}' index {i}"  # '' would drop the index
                xt = ":xtic(1)" if j == 0 else ""
                bars.append(f"{src} using {c}:{c + 1}:{c + 2}{xt} lc rgb '{colours[a.label]}' "
                            "notitle")
            out.append(f'set title "{name}"\nset ylabel "{ylabel_of(by_name[name])}"\n'
                       "plot " + ", \\\n     ".join(bars))
        legend = ", \\\n     ".join(f"NaN with boxes lc rgb '{colours[a.label]}' title "
                                     f"'{a.label}'" for a in allocs)
        out.append("unset title; unset ylabel; unset xlabel; unset logscale; unset border\n"
                   "unset tics; unset grid; set xrange [0:1]; set yrange [0:1]\n"
                   f"set key center center font ',11'\nplot {legend}\n"
                   "set border; set tics; set grid ytics; set logscale y; set autoscale; unset key")
        return "\n".join(out)

    def page(png, title, first_col, ylabel_of):
        return f"""set output '{png}'
set multiplot layout {rows_grid},{cols_grid} title "{title}"
unset key
{panels(first_col, ylabel_of)}
unset multiplot
"""
    base = os.path.basename(stem)
    gp = f"""# Generated by bench/run.py; run `gnuplot {base}.gp` in bench/results/.
set terminal pngcairo size 1500,{360 * rows_grid + 60} font ",9"
set datafile missing "NaN"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set xlabel "threads"
{page(base + "-throughput.png", f"hakmem lab, {mode}: throughput (bar median, whiskers min-max; log)", 2, lambda w: w.unit)}
{page(base + "-rss.png", f"hakmem lab, {mode}: peak RSS in MB (bar median, whiskers min-max; log)", 2 + 3 * n, lambda w: "peak RSS, MB")}
"""
    with open(stem + ".gp", "w") as f:
        f.write(gp)
    proc = subprocess.run(["gnuplot", base + ".gp"], cwd=os.path.dirname(stem),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return "gnuplot failed: " + proc.stderr.strip()[:300]
    return None


# ---- instruction counts (callgrind) -------------------------------------------------------


def malloc_objects(profile):
    """The objects (real paths) in which a function named malloc ran, from a callgrind profile.
    fn= lines belong to the last ob=, cfn= lines to the last cob= (or the caller's ob=)."""
    names, fn_names, owners = {}, {}, set()
    ob = cob = None
    for line in profile.splitlines():
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line)
        if not m:
            continue
        key, ident, name = m.groups()
        if key in ("ob", "cob"):
            if name:
                names[ident] = name
            if key == "ob":
                ob = cob = names.get(ident)
            else:
                cob = names.get(ident)
        else:
            if name:
                fn_names[ident] = name
            where = ob if key == "fn" else cob
            if fn_names.get(ident) == "malloc" and where and where != "???":
                owners.add(os.path.realpath(where))
        if key == "fn":
            cob = ob
    return owners


def callgrind_ir(alloc, iters, size, mode):
    """Total instructions of one `churn` run under callgrind, or (None, reason)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--trace-children=no",
                f"--callgrind-out-file={out}", os.path.join(BENCH_BIN, "churn"), str(iters),
                str(size), mode]
        run = run_program(alloc, argv, timeout=600)
        if run.status != "ok":
            return None, run.reason
        try:
            with open(out) as f:
                text = f.read()
        except OSError:
            return None, "no callgrind output"
        # Make sure the numbers are the preloaded allocator's: malloc must not have run in libc.
        # (Callgrind names some objects "???", tcmalloc's among them, so absence proves little.)
        owners = malloc_objects(text)
        if alloc.preload and os.path.realpath(alloc.preload) not in owners and \
                any(os.path.basename(o).startswith("libc.so") for o in owners):
            return None, "malloc ran in " + ", ".join(sorted(owners))
        m = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.M)
        return (int(m.group(1)), "") if m else (None, "no totals")


def run_callgrind(allocs, quick=False):
    """Markdown: instructions per malloc+free pair for each allocator, net of the loop."""
    if not shutil.which("valgrind"):
        return "\n## Instructions per malloc+free pair\n\nvalgrind is not installed " \
               "(apt-get install -y valgrind): skipped.\n"
    n1, n2 = (20000, 220000) if quick else (200000, 1200000)
    sizes = [(32, "32 B"), (0, "16–128 B mixed")]
    glibc = allocs[0]
    progress = Progress(2 * len(sizes) * (len(allocs) + 1))

    def per_pair(alloc, size, mode):
        irs = []
        for iters in (n1, n2):
            progress.step(f"callgrind churn {alloc.label} size={size} {mode} iters={iters}")
            ir, why = callgrind_ir(alloc, iters, size, mode)
            if ir is None:
                return None, why
            irs.append(ir)
        return (irs[1] - irs[0]) / (n2 - n1), ""
    table = {}
    loop = {}
    for size, _ in sizes:
        loop[size], _why = per_pair(glibc, size, "baseline")
        for a in allocs:
            table[(a.label, size)] = per_pair(a, size, "malloc")
    progress.finish()
    rows = []
    for a in allocs:
        line = [a.label]
        for size, _ in sizes:
            v, why = table[(a.label, size)]
            if v is None:
                line.append(f"FAIL {why}")
                continue
            net = v - (loop[size] or 0)
            mi = table.get(("mimalloc", size), (None, ""))[0]
            rel = f" ({net / (mi - (loop[size] or 0)):.2f}× mimalloc)" if mi else ""
            line.append(f"{net:.1f}{rel}")
        rows.append(line)
    md = ("\n## Instructions per malloc+free pair (callgrind, single-thread `churn`)\n\n"
          f"(Ir({n2} iterations) - Ir({n1})) / {n2 - n1}, minus the loop's own "
          f"{', '.join(f'{loop[s]:.1f}' for s, _ in sizes if loop[s])} instructions per "
          "iteration measured with `churn ... baseline`; 256 blocks stay live so pages never "
          "empty. Callgrind does not replace malloc (only memcheck-style tools do), so "
          "`LD_PRELOAD=lib valgrind --tool=callgrind build/bench/churn N SIZE` measures the "
          "preloaded allocator; the runner checks in each profile that malloc did not run in "
          "libc.\n\n")
    md += md_table(["allocator"] + [label for _, label in sizes], rows) + "\n"
    md += whole_program_churn(allocs, quick)
    return md


def whole_program_churn(allocs, quick=False):
    """Markdown: the whole `churn N 0 live` program's instructions (start-up and exit included)
    under each allocator, its ratio to mimalloc's, and the cost of one more iteration."""
    n1, n2 = (20000, 100000) if quick else (200000, 1000000)
    progress = Progress(2 * len(allocs))
    total = {}
    for a in allocs:
        irs = []
        for iters in (n1, n2):
            progress.step(f"callgrind churn {a.label} live iters={iters}")
            ir, why = callgrind_ir(a, iters, 0, "live")
            if ir is None:
                irs = why
                break
            irs.append(ir)
        total[a.label] = irs
    progress.finish()
    mi = total.get("mimalloc")
    mi_total = mi[1] if isinstance(mi, list) else None
    rows = []
    for a in allocs:
        irs = total[a.label]
        if not isinstance(irs, list):
            rows.append([a.label, f"FAIL {irs}", "", ""])
            continue
        rel = f"{irs[1] / mi_total:.3f}" if mi_total else "-"
        rows.append([a.label, f"{irs[1] / 1e6:.2f}", rel, f"{(irs[1] - irs[0]) / (n2 - n1):.1f}"])
    md = (f"\n## Whole-program churn: 1000 live blocks of 16–128 B (callgrind)\n\n"
          f"`churn {n2} 0 live`: each iteration frees a random one of 1000 live blocks and "
          f"allocates one of a random size of 16–128 B in its place. Instructions of the whole "
          f"program (start-up, the loop, the frees at the end, exit), its ratio to mimalloc's, and "
          f"one iteration's cost ((Ir({n2}) - Ir({n1})) / {n2 - n1}, the loop's own instructions "
          f"included).\n\n")
    md += md_table(["allocator", "M instructions", "× mimalloc", "per iteration"], rows) + "\n"
    return md


# ---- modes --------------------------------------------------------------------------------


def mode_matrix(args, allocs, notes):
    quick = args.mode == "quick"
    workloads = [w for w in WORKLOADS
                 if not args.workload or w.name in args.workload.split(",")
                 or w.prog in args.workload.split(",")]
    wanted_threads = [int(x) for x in args.threads.split(",")] if args.threads else None

    def threads_for(w):
        ts = w.quick_threads if quick else w.threads
        if wanted_threads and len(w.threads) > 1:
            ts = tuple(wanted_threads)
        return ts
    rows = [(w, t) for w in workloads for t in threads_for(w)]
    runs = len(rows) * len(allocs) * args.repeats
    lo, hi = (0.05, 0.5) if quick else (1.0, 5.0)
    pacer = Pacer(args.budget, [(w, t, len(allocs) * args.repeats) for w, t in rows], lo, hi,
                  args.seconds)
    print(f"{args.mode}: {len(rows)} rows x {len(allocs)} allocators x {args.repeats} repeats = "
          f"{runs} runs of about {pacer.row_seconds(0):.2g} s each, fitted to a budget of "
          f"{args.budget:.0f} s", file=sys.stderr)
    for n in notes:
        print("note: " + n, file=sys.stderr)
    started = datetime.datetime.now()
    row_secs, cells = run_matrix(rows, allocs, args.repeats, pacer)
    rebuilt = rebuilt_note(cells)
    if rebuilt:
        notes = notes + [rebuilt]
        print("note: " + rebuilt, file=sys.stderr)
    extra = ""
    if args.mode == "full" and not args.no_callgrind:
        extra = run_callgrind(allocs)
    if args.mode == "full" and not args.no_traces:
        extra += traces_section(args, allocs, notes)
    stem = os.path.join(args.out, f"{started:%Y%m%d-%H%M%S}-{args.mode}")
    os.makedirs(args.out, exist_ok=True)
    md = write_report(args.mode, rows, row_secs, cells, allocs, notes, args.repeats, started,
                      extra)
    write_raw(stem, args.mode, rows, row_secs, cells, allocs)
    plot_note = None if args.no_plot else write_plot(stem, args.mode, rows, cells, allocs)
    if plot_note is None and not args.no_plot:
        md += (f"\nPlots: `{os.path.relpath(stem, ROOT)}-throughput.png`, "
               f"`{os.path.relpath(stem, ROOT)}-rss.png` (script `{os.path.basename(stem)}.gp`)\n")
    elif plot_note:
        md += f"\nPlot: {plot_note}\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"written: {os.path.relpath(stem, ROOT)}.{{md,csv,json" +
          (",gp,dat} and -throughput.png, -rss.png" if plot_note is None and not args.no_plot
           else "}"), file=sys.stderr)
    return 1 if any(c.failed for c in cells.values()) else 0


def mode_callgrind(args, allocs, notes):
    for n in notes:
        print("note: " + n, file=sys.stderr)
    started = datetime.datetime.now()
    md = f"# hakmem benchmark lab: callgrind\n\n- when: {started:%Y-%m-%d %H:%M:%S}, " \
         f"machine: {machine_info()}\n" + "".join(f"- note: {n}\n" for n in notes)
    md += run_callgrind(allocs, quick=args.quick_callgrind)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{started:%Y%m%d-%H%M%S}-callgrind")
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"written: {os.path.relpath(stem, ROOT)}.md", file=sys.stderr)
    return 0


def traces_section(args, allocs, notes, started=None):
    """Markdown of the traces section (tools/hakmem_replay.py records and replays)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import hakmem_replay
    replayer = os.path.join(ROOT, "build", "bin", "hakmem-replay")
    if not os.path.exists(replayer) or not any(a.kind == "hakmem" for a in allocs):
        return ("\n## Traces of real programs\n\nskipped: build/bin/hakmem-replay or "
                "build/libhakmem.so is missing (run `make`)\n")
    conf = next((a.conf for a in allocs if a.label == "hakmem-default"), "")
    lib = next(a.preload for a in allocs if a.kind == "hakmem")
    return hakmem_replay.lab_traces(replayer, lib, conf, allocs, args.repeats, args.out,
                                    args.no_plot, started)


def mode_traces(args, allocs, notes):
    for n in notes:
        print("note: " + n, file=sys.stderr)
    started = datetime.datetime.now()
    os.makedirs(args.out, exist_ok=True)
    md = traces_section(args, allocs, notes, started)
    print(md)
    print(f"written: {os.path.relpath(os.path.join(args.out, f'{started:%Y%m%d-%H%M%S}-traces'), ROOT)}"
          ".{md,csv,json} and plots", file=sys.stderr)
    return 1 if "FAIL" in md else 0


def rss_steady(run):
    """Is the RSS of the second half of the run no higher than the first half's peak (+10%)?"""
    series = [int(x) for x in run.result.get("rss_kb_series", "").split(",") if x.isdigit()]
    if len(series) < 4:
        return None
    # The last sample is taken after the final frees; judge the run itself.
    body = series[:-1]
    half = len(body) // 2
    first, second = max(body[:half]), max(body[half:])
    return second <= first * 1.10 + 1024, first, second


def larson_columns(allocs, secs, threads=4):
    """Runs larson once per allocator; returns [(alloc, Run)]."""
    argv = [os.path.join(BENCH_BIN, "larson"), secs_arg(secs), *LARSON_ARGS, str(threads)]
    progress = Progress(len(allocs))
    out = []
    for a in allocs:
        progress.step(f"larson {secs:.0f}s {a.label}")
        out.append((a, run_program(a, argv, timeout=secs * 4 + 30)))
    progress.finish()
    return argv, out


def larson_table(columns):
    """Plain-text side-by-side table (the demo's and the larson mode's)."""
    def get(run, key, scale=1.0, fmt="{:.1f}"):
        v = run.num(key)
        return fmt.format(v / scale) if v is not None else "–"

    def hk(run, *path):
        v = run.hakmem
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        return str(v) if v is not None else "–"
    lines = [("", [a.label for a, _ in columns])]
    lines.append(("status", ["ok" if r.status == "ok" else f"FAIL: {r.reason}"
                             for _, r in columns]))
    lines.append(("throughput (M ops/s)", [get(r, "ops_per_sec", 1e6, "{:.2f}") for _, r in columns]))
    lines.append(("peak RSS (MB)", [get(r, "peak_rss_kb", 1024) for _, r in columns]))
    lines.append(("final RSS (MB)", [get(r, "final_rss_kb", 1024) for _, r in columns]))
    lines.append(("mappings at exit", [get(r, "mappings", 1, "{:.0f}") for _, r in columns]))
    lines.append(("threads created", [get(r, "threads_created", 1, "{:.0f}") for _, r in columns]))
    lines.append(("wall time (s)", [f"{r.wall:.2f}" for _, r in columns]))
    lines.append(("CPU user / sys (s)", [f"{get(r, 'user_secs', 1, '{:.2f}')} / "
                                         f"{get(r, 'sys_secs', 1, '{:.2f}')}" for _, r in columns]))
    lines.append(("CPU time per op (ns)", [get(r, "cpu_ns_per_op", 1, "{:.1f}") for _, r in columns]))
    peers = [r.num("cpu_ns_per_op") for a, r in columns
             if a.kind == "peer" and r.status == "ok" and r.num("cpu_ns_per_op")]
    if peers:
        best = min(peers)
        lines.append(("CPU time / best peer", [
            f"{r.num('cpu_ns_per_op') / best:.2f}x" if r.num("cpu_ns_per_op") else "–"
            for _, r in columns]))
    lines.append(("minor faults", [get(r, "minflt", 1, "{:.0f}") for _, r in columns]))
    lines.append(("context switches vol / invol", [f"{get(r, 'nvcsw', 1, '{:.0f}')} / "
                                                   f"{get(r, 'nivcsw', 1, '{:.0f}')}"
                                                   for _, r in columns]))

    def steady(r):
        s = rss_steady(r) if r.status == "ok" else None
        return "–" if s is None else (f"{'yes' if s[0] else 'NO'} "
                                      f"({s[1] / 1024:.1f}→{s[2] / 1024:.1f} MB)")
    lines.append(("RSS steady (1st→2nd half)", [steady(r) for _, r in columns]))
    if any(a.kind == "hakmem" for a, _ in columns):
        lines.append(("SuperSlabs mapped", [hk(r, "superslabs", "mapped") for _, r in columns]))
        lines.append(("SuperSlabs released", [hk(r, "superslabs", "released") for _, r in columns]))
        lines.append(("SuperSlabs live (exit)", [hk(r, "superslabs", "live") for _, r in columns]))
        lines.append(("SuperSlabs peak live", [hk(r, "superslabs", "peak_live") for _, r in columns]))
        lines.append(("frees local / remote", [f"{hk(r, 'frees', 'local')} / "
                                               f"{hk(r, 'frees', 'remote')}" for _, r in columns]))
        lines.append(("policies", [" ".join(f"{k}={v.get('name')}" for k, v in
                                            (r.hakmem or {}).get("policies", {}).items()
                                            if isinstance(v, dict)) or "–"
                                   for _, r in columns]))
    w0 = max(len(name) for name, _ in lines)
    widths = [max(len(vals[i]) for _, vals in lines) for i in range(len(columns))]
    text = []
    for name, vals in lines:
        text.append(name.ljust(w0) + "  " + "  ".join(v.rjust(wd) for v, wd in zip(vals, widths)))
    return "\n".join(text)


def mode_larson(args, allocs, notes, demo=False):
    secs = args.seconds or (10 if demo else 60)
    if demo:
        hakmem = [a for a in allocs if a.kind == "hakmem"]
        allocs = [allocs[0]] + hakmem[:1]  # glibc and the default configuration
    for n in notes:
        if demo and n.startswith("peers"):
            continue
        print(("demo: " if demo else "note: ") + n, file=sys.stderr)
    argv, columns = larson_columns(allocs, secs)
    title = (f"Larson server workload: 4 threads, 8-128 B blocks, 1024 live blocks per thread, "
             f"a new thread every 100 rounds, {secs:g} s, one run each\n"
             f"command: {os.path.relpath(argv[0], ROOT)} {' '.join(argv[1:])}")
    print(title + "\n")
    print(larson_table(columns))
    print()
    for a, _ in columns:
        print(f"{a.label}: {a.shell_prefix() or 'no LD_PRELOAD (the system allocator)'}")
    status = 0 if all(r.status == "ok" for _, r in columns) else 1
    if not any(a.kind == "hakmem" for a, _ in columns):
        print("\nhakmem: NOT RUN (build/libhakmem.so missing, or the build failed).")
        status = 1
    if not demo:
        print("\nTargets from the core issue (4 threads, 8-128 B, 1024 blocks, 60 s):")
        mi = next((r for a, r in columns if a.label == "mimalloc" and r.status == "ok"), None)
        for a, r in columns:
            if a.kind != "hakmem":
                continue
            if r.status != "ok":
                print(f"- {a.label}: FAIL ({r.reason})")
                continue
            peak = r.num("peak_rss_kb") / 1024
            released = (r.hakmem or {}).get("superslabs", {}).get("released")
            steady = rss_steady(r)
            thr = r.num("ops_per_sec") / mi.num("ops_per_sec") if mi else None
            cpu = (r.num("cpu_ns_per_op") / mi.num("cpu_ns_per_op")
                   if mi and r.num("cpu_ns_per_op") and mi.num("cpu_ns_per_op") else None)
            print(f"- {a.label}: peak RSS {peak:.1f} MB {'<' if peak < 100 else 'NOT <'} 100 MB; "
                  f"SuperSlabs released {released if released is not None else '?'}"
                  f" {'> 0' if released else '(NOT > 0)'}; RSS steady: "
                  f"{'?' if steady is None else 'yes' if steady[0] else 'NO'}; no corruption; "
                  f"throughput {'?' if thr is None else f'{thr:.2f}×'} mimalloc's, "
                  f"CPU time per op {'?' if cpu is None else f'{cpu:.2f}×'} mimalloc's")
        started = datetime.datetime.now()
        os.makedirs(args.out, exist_ok=True)
        stem = os.path.join(args.out, f"{started:%Y%m%d-%H%M%S}-larson")
        with open(stem + ".md", "w") as f:
            f.write(f"# hakmem benchmark lab: larson targets\n\n- when: {started:%Y-%m-%d %H:%M}, "
                    f"machine: {machine_info()}\n\n```\n{title}\n\n{larson_table(columns)}\n```\n")
        print(f"written: {os.path.relpath(stem, ROOT)}.md", file=sys.stderr)
    return status


# ---- bursts: the trim policies' RSS over time -------------------------------------------------

BURSTS_ARGS = ["20", "64", "10", "200", "12000"]  # ROUNDS MB BASE_PCT PAUSE_MS LINGER_MS
BURSTS_CONFS = ["hakmem-trim-none", "hakmem-default", "hakmem-trim-eager", "hakmem-trim-decay"]


def curve_of(run):
    """[(seconds, MB)] from a bursts RESULT line: rss_curve_kb spread evenly over curve_secs."""
    try:
        kb = [int(x) for x in run.result.get("rss_curve_kb", "").split(",") if x.isdigit()]
        span = float(run.result["curve_secs"])
    except (KeyError, ValueError):
        return []
    if len(kb) < 2:
        return []
    return [(span * i / (len(kb) - 1), v / 1024.0) for i, v in enumerate(kb)]


def mean_mb(curve):
    """The time-averaged RSS of a curve (trapezoids), MB."""
    if len(curve) < 2:
        return None
    area = sum((t1 - t0) * (m0 + m1) / 2 for (t0, m0), (t1, m1) in zip(curve, curve[1:]))
    return area / (curve[-1][0] - curve[0][0])


def write_curve_plot(stem, picked, title):
    """<stem>-rss-curve.png: one RSS-over-time line per allocator; data <stem>-curve.dat (one
    gnuplot index per allocator), script <stem>-curve.gp. None, or why there is no plot."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (apt-get install -y gnuplot-nox): no plot"
    colours = {"hakmem-trim-none": "#000000", "hakmem-default": "#1f77b4",
               "hakmem-trim-eager": "#d62728", "hakmem-trim-decay": "#2ca02c"}
    others = iter(HAKMEM_COLOURS[4:])
    base = os.path.basename(stem)
    with open(stem + "-curve.dat", "w") as f:
        f.write("# one index per allocator: seconds since the first round, VmRSS MB\n")
        for label, run in picked:
            f.write(f"# {label}\n" + "".join(f"{t:.3f} {m:.2f}\n" for t, m in curve_of(run)) + "\n\n")
    lines = []
    for i, (label, _) in enumerate(picked):
        peer = label in PEER_COLOURS  # the peers dashed, in their matrix colours
        c = PEER_COLOURS[label] if peer else colours.get(label) or next(others, "#8c564b")
        name = {"hakmem-default": "hakmem idle (default)"}.get(label, label.replace("hakmem-trim-", "hakmem "))
        lines.append(f"'{base}-curve.dat' index {i} using 1:2 with lines lw 2 {'dt 2 ' if peer else ''}"
                     f"lc rgb '{c}' title '{name}'")
    gp = f"""# Generated by bench/run.py bursts; run `gnuplot {base}-curve.gp` in bench/results/.
set terminal pngcairo size 1200,600 font ",10"
set output '{base}-rss-curve.png'
set title "{title}"
set xlabel "seconds since the first burst"
set ylabel "RSS, MB"
set grid
set key top right
set yrange [0:*]
plot """ + ", \\\n     ".join(lines) + "\n"
    with open(stem + "-curve.gp", "w") as f:
        f.write(gp)
    proc = subprocess.run(["gnuplot", base + "-curve.gp"], cwd=os.path.dirname(stem),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return "gnuplot failed: " + proc.stderr.strip()[:300]
    return None


def mode_bursts(args, allocs, notes):
    """bursts under each trim policy (and whatever --alloc adds), --repeats runs each: minor
    faults, peak / mean / final RSS, and the plot of the run with the median mean RSS."""
    if args.alloc:  # as selected (main adds glibc: kept only when asked for)
        allocs = [a for a in allocs if a.label != "glibc" or "glibc" in args.alloc.split(",")]
        missing = []
    else:
        allocs = [a for a in allocs if a.label in BURSTS_CONFS]
        missing = [w for w in BURSTS_CONFS if w not in {a.label for a in allocs}]
    for n in notes + [f"not available here: {', '.join(missing)}"] * bool(missing):
        print("note: " + n, file=sys.stderr)
    argv = [os.path.join(BENCH_BIN, "bursts")] + BURSTS_ARGS
    if not os.path.exists(argv[0]):
        print("run.py: build/bench/bursts not built: run `make bench-progs`", file=sys.stderr)
        return 2
    started = datetime.datetime.now()
    runs = {a.label: [] for a in allocs}
    progress = Progress(len(allocs) * args.repeats)
    for rep in range(args.repeats):
        order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)] if allocs else []
        for a in order:
            progress.step(f"bursts {a.label}")
            runs[a.label].append(run_program(a, argv, 120))
    progress.finish()
    cmd = f"{os.path.relpath(argv[0], ROOT)} {' '.join(BURSTS_ARGS)}"
    title = (f"bursts: 20 rounds of 64 MB of 16-512 B blocks allocated, freed, 200 ms asleep; "
             f"10% live throughout; then 12 s idle")
    header = ["allocator", "minor faults (k)", "peak RSS MB", "mean RSS MB", "RSS MB 1 s after the bursts",
              "RSS MB at the end", "CPU s", "runs"]
    rows, picked, status = [], [], 0
    for a in allocs:
        ok = [r for r in runs[a.label] if r.status == "ok"]
        if len(ok) < len(runs[a.label]):
            status = 1
        if not ok:
            rows.append([a.label, "FAIL: " + "; ".join(r.reason for r in runs[a.label])] + [""] * 6)
            continue

        def med(vals, fmt="{:.1f}"):
            vals = [v for v in vals if v is not None]
            if not vals:
                return "?"
            return fmt.format(statistics.median(vals)) + (
                f" ({fmt.format(min(vals))}–{fmt.format(max(vals))})" if len(vals) > 1 else "")
        means = [mean_mb(curve_of(r)) for r in ok]
        by_mean = sorted(zip([m if m is not None else 0 for m in means], range(len(ok))))
        picked.append((a.label, ok[by_mean[len(by_mean) // 2][1]]))

        def after_bursts(r):
            c, secs = curve_of(r), r.num("secs")
            return next((m for t, m in c if secs is not None and t >= secs + 1), None)
        rows.append([a.label, med([r.num("minflt") / 1000 for r in ok]),
                     med([r.num("peak_rss_kb") / 1024 for r in ok]), med(means),
                     med([after_bursts(r) for r in ok]), med([r.num("final_rss_kb") / 1024 for r in ok]),
                     med([r.num("cpu_secs") for r in ok], "{:.2f}"), str(len(ok))])
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{started:%Y%m%d-%H%M%S}-bursts")
    md = (f"# hakmem benchmark lab: bursts\n\n- when: {started:%Y-%m-%d %H:%M}, machine: "
          f"{machine_info()}\n- {title}\n- command: `{cmd}` under each allocator "
          f"({args.repeats} runs each, median (min–max)); mean RSS is the time average over the "
          f"whole curve, bursts and idle tail\n" + "".join(f"- note: {n}\n" for n in notes) +
          "\n" + md_table(header, rows) + "\n")
    for a in allocs:
        md += f"\n- {a.label}: `{a.shell_prefix()} {cmd}`"
    plot_note = None if args.no_plot else write_curve_plot(stem, picked, title)
    if plot_note is None and not args.no_plot:
        md += (f"\n\nPlot: `{os.path.relpath(stem, ROOT)}-rss-curve.png` (the run with the median "
               f"mean RSS of each; script `{os.path.basename(stem)}-curve.gp`)\n")
    elif plot_note:
        md += f"\n\nPlot: {plot_note}\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    with open(stem + ".json", "w") as f:
        json.dump({a: [{"status": r.status, "reason": r.reason, "result": r.result,
                        "rusage": r.rusage, "hakmem": r.hakmem} for r in rs]
                   for a, rs in runs.items()}, f, indent=1)
    print(md)
    print(f"written: {os.path.relpath(stem, ROOT)}.{{md,json}}" +
          (", -curve.dat, -curve.gp, -rss-curve.png" if plot_note is None and not args.no_plot else ""),
          file=sys.stderr)
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["quick", "full", "callgrind", "larson", "demo", "traces",
                                     "bursts"])
    ap.add_argument("--repeats", type=int, default=3, help="runs per cell (default 3)")
    ap.add_argument("--budget", type=float, default=None,
                    help="target seconds for the matrix (default quick 45, full 2100)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="seconds per run, overriding --budget")
    ap.add_argument("--workload", help="comma-separated workload or program names")
    ap.add_argument("--threads", help="comma-separated thread counts, e.g. 1,4")
    ap.add_argument("--alloc", help="comma-separated allocator labels ('hakmem' = all configs)")
    ap.add_argument("--hakmem-lib", default=HAKMEM_LIB,
                    help="the hakmem library to preload (default build/libhakmem.so)")
    ap.add_argument("--conf-dir", default=CONF_DIR,
                    help="folder of hakmem INI files, one column each (default conf/)")
    ap.add_argument("--out", default=RESULTS_DIR, help="results folder (default bench/results)")
    ap.add_argument("--no-plot", action="store_true", help="skip gnuplot")
    ap.add_argument("--no-callgrind", action="store_true", help="full mode without callgrind")
    ap.add_argument("--no-traces", action="store_true", help="full mode without the traces section")
    ap.add_argument("--quick-callgrind", action="store_true",
                    help="callgrind with 10x fewer iterations")
    args = ap.parse_args()
    if args.budget is None:
        args.budget = 40 if args.mode == "quick" else 2100
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    missing = [p for p in ("larson", "churn") if not os.path.exists(os.path.join(BENCH_BIN, p))]
    if missing:
        print(f"run.py: {', '.join(missing)} not built in build/bench/: run `make bench-progs`",
              file=sys.stderr)
        return 2
    allocs, notes = discover_allocators(os.path.abspath(args.hakmem_lib),
                                        os.path.abspath(args.conf_dir))
    allocs = select_allocators(allocs, args.alloc)
    if not allocs or allocs[0].label != "glibc":
        allocs = [Allocator("glibc", "glibc")] + [a for a in allocs if a.label != "glibc"]
    if args.mode in ("quick", "full"):
        return mode_matrix(args, allocs, notes)
    if args.mode == "callgrind":
        return mode_callgrind(args, allocs, notes)
    if args.mode == "traces":
        return mode_traces(args, allocs, notes)
    if args.mode == "bursts":
        return mode_bursts(args, allocs, notes)
    return mode_larson(args, allocs, notes, demo=args.mode == "demo")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
