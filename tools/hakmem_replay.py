#!/usr/bin/env python3
"""hakmem replay: replays a trace recorded with `hakmem record` (or HAKMEM_TRACE) under several
allocators and hakmem configurations, each run a process of its own with the allocator preloaded
(the replayer, hakmem-replay; never this driver), and reports like the benchmark lab, whose
reporting code it uses (bench/run.py): a Markdown table on stdout, and <stem>.md, .csv, .json,
and gnuplot plots (throughput and peak RSS bars, the RSS curve over the trace).

    hakmem replay TRACE [--config A.ini]... [--alloc glibc|mimalloc|jemalloc|tcmalloc|hakmem|PATH.so]...
                  [--runs N] [--timed] [--process N|all] [--out DIR] [--no-plot]

Every process of the trace (the program, the children it forked, the programs it executed) is
replayed on its own, in order, and a run's figures add up over them (time, CPU, faults) or take
the largest (RSS, mappings). Every run must replay exactly the operations the trace holds, with
no corruption, or its cell is FAIL.

The benchmark lab's `traces` section (run_lab_traces, called by bench/run.py) records real
programs found on the machine and replays them under every configuration and every peer.
Python standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
for d in (HERE, os.path.join(os.path.dirname(HERE), "bench")):
    if os.path.exists(os.path.join(d, "run.py")) and d not in sys.path:
        sys.path.insert(0, d)
import run as lab  # noqa: E402  (bench/run.py: the lab's allocators, runs and tables)

OPS = ["malloc", "free", "calloc", "realloc", "realloc_moved", "memalign", "free_sized", "trim",
       "thread_end", "fork"]
EXIT_REASONS = {**lab.EXIT_REASONS, 6: "bad trace"}


def fail(msg, code=2):
    print("hakmem: replay: " + msg, file=sys.stderr)
    sys.exit(code)


# ---- what the trace holds -----------------------------------------------------------------


def trace_info(replayer, trace):
    """(processes, file): the replayer's --info lines, run without any preload."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("HAKMEM_")}
    proc = subprocess.run([replayer, "--info", trace], capture_output=True, text=True, env=env,
                          errors="replace")
    procs, summary = [], None
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("file"):
            summary = rec
        else:
            procs.append(rec)
    if summary is None:
        fail(proc.stderr.strip().replace("hakmem-replay: ", "") or f"{trace}: not readable")
    if proc.returncode not in (0,):
        fail(proc.stderr.strip().replace("hakmem-replay: ", ""), 6)
    return procs, summary


# ---- allocators -----------------------------------------------------------------------------


def allocator_for(name, hakmem_lib):
    """An --alloc NAME: glibc, a peer, hakmem (as configured in the environment), or a .so."""
    if name == "glibc":
        return lab.Allocator("glibc", "glibc")
    if name == "hakmem":
        return lab.Allocator("hakmem", "hakmem", hakmem_lib, os.environ.get("HAKMEM_CONF", ""))
    for label, lib, pkg in lab.PEERS:
        if name == label:
            path = os.path.join(lab.LIBDIR, lib)
            if not os.path.exists(path):
                fail(f"--alloc {name}: {path} is not installed (apt-get install -y {pkg})")
            return lab.Allocator(label, "peer", path)
    if name.endswith(".so") or "/" in name or ".so." in name:
        path = os.path.abspath(name)
        if not os.path.exists(path):
            fail(f"--alloc {name}: no such file")
        return lab.Allocator(os.path.basename(name).split(".so")[0], "peer", path)
    fail(f"--alloc {name}: expected glibc, mimalloc, jemalloc, tcmalloc, hakmem or a PATH.so")


def allocators_from(args):
    allocs = []
    for ini in args.config or []:
        if not os.path.isfile(ini):
            fail(f"--config {ini}: no such file")
        path = os.path.abspath(ini)
        allocs.append(lab.Allocator(lab.hakmem_label(path), "hakmem", args.hakmem_lib, path))
    for spec in args.alloc or []:
        for name in spec.split(","):
            if name:
                allocs.append(allocator_for(name, args.hakmem_lib))
    if not allocs:
        allocs = [allocator_for("glibc", args.hakmem_lib), allocator_for("hakmem", args.hakmem_lib)]
    seen, out = set(), []
    for a in allocs:
        label, k = a.label, 2
        while label in seen:
            label = f"{a.label}-{k}"
            k += 1
        a.label = label
        seen.add(label)
        out.append(a)
    return out


# ---- one replay -------------------------------------------------------------------------------


def replay_once(replayer, trace, index, alloc, timed, timeout):
    """Runs the replayer on process `index` under alloc; a lab Run whose result also holds
    user_secs, sys_secs, minflt (from wait4) and the replayer's counts."""
    argv = [replayer, "--process", str(index)] + (["--timed"] if timed else []) + [trace]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(argv, env=alloc.env(), stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL)
        except OSError as e:
            return lab.Run("FAIL", f"exec: {e.strerror}")
        status = usage = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = None
                break
            time.sleep(0.01)
        proc.returncode = 0  # reaped here: keep Popen from waiting again
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    stats, other = lab.parse_hakmem_stats(stderr)
    tail = "\n".join(other[-3:])
    if status is None:
        return lab.Run("FAIL", f"timeout {timeout:.0f}s", hakmem=stats, wall=wall, stderr_tail=tail)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return lab.Run("FAIL", name, hakmem=stats, wall=wall, stderr_tail=tail)
    rc = os.WEXITSTATUS(status)
    if rc != 0:
        return lab.Run("FAIL", EXIT_REASONS.get(rc, f"exit {rc}"), hakmem=stats, wall=wall,
                       stderr_tail=tail)
    result = lab.parse_result(stdout)
    if result is None:
        return lab.Run("FAIL", "no RESULT line", hakmem=stats, wall=wall, stderr_tail=tail)
    result["user_secs"] = f"{usage.ru_utime:.3f}"
    result["sys_secs"] = f"{usage.ru_stime:.3f}"
    result["minflt"] = str(usage.ru_minflt)
    result["wall_secs"] = f"{wall:.3f}"
    return lab.Run("ok", result=result, hakmem=stats, wall=wall, stderr_tail=tail)


def counts_match(run, proc):
    """'' when the run replayed exactly the process's operations, else what differs."""
    bad = [f"{op} {run.result.get(op)} of {proc['ops'].get(op, 0)}" for op in OPS
           if str(proc["ops"].get(op, 0)) != run.result.get(op)]
    return ", ".join(bad)


def combine(runs, procs):
    """One Run per repetition out of the runs of every process: times, CPU and faults add up,
    RSS and mappings take the largest; the RSS curve and hakmem's counters are those of the
    process with the most operations."""
    if len(runs) == 1:
        return runs[0]
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        return failed[0]
    main = max(range(len(runs)), key=lambda i: procs[i]["events"])
    res = dict(runs[main].result)
    for k in ("ops", "minflt", "moved_here", "threads_created") + tuple(OPS):
        res[k] = str(sum(int(float(r.result.get(k, 0))) for r in runs))
    for k in ("secs", "user_secs", "sys_secs", "wall_secs"):
        res[k] = f"{sum(float(r.result.get(k, 0)) for r in runs):.6f}"
    for k in ("peak_rss_kb", "final_rss_kb", "mappings", "threads"):
        res[k] = f"{max(float(r.result.get(k, 0)) for r in runs):.0f}"
    secs = float(res["secs"])
    res["ops_per_sec"] = f"{float(res['ops']) / secs:.0f}" if secs > 0 else "0"
    return lab.Run("ok", result=res, hakmem=runs[main].hakmem, wall=sum(r.wall for r in runs),
                   stderr_tail=runs[main].stderr_tail)


class TraceRow(lab.Workload):
    """A trace as a row of the lab's tables."""


def trace_row(label, trace, procs):
    events = sum(p["events"] for p in procs)
    main = max(procs, key=lambda p: p["events"])
    doc = (f"`{os.path.basename(trace)}`: {len(procs)} process{'es' if len(procs) > 1 else ''} "
           f"({', '.join(p['program'] for p in procs[:6])}{', ...' if len(procs) > 6 else ''}), "
           f"{events} operations, {sum(p['threads'] for p in procs)} threads, recorded over "
           f"{max(p['seconds'] for p in procs):.2f} s; largest: `{main['cmdline'][:80]}`")
    return TraceRow(label, "hakmem-replay", lambda s, t: [trace], "M ops/s", 1e6, doc=doc)


def replay_matrix(replayer, rows_spec, allocs, runs, timed, progress_label="replay"):
    """rows_spec: [(row, trace, procs)]. Returns cells {(row name, threads, label): Cell}."""
    cells = {}
    total = sum(len(procs) for _, _, procs in rows_spec) * len(allocs) * runs
    progress = lab.Progress(total)
    for row, trace, procs in rows_spec:
        t = max(p["max_live_threads"] for p in procs)
        for a in allocs:
            cells[(row.name, t, a.label)] = lab.Cell()
        rec_secs = sum(p["seconds"] for p in procs)
        timeout = (3 * rec_secs + 120) if timed else 60 + 2 * rec_secs + 20e-6 * sum(
            p["events"] for p in procs)
        for rep in range(runs):
            order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
            for a in order:
                per = []
                for p in procs:
                    progress.step(f"{progress_label} {row.name} {a.label} process {p['index']} "
                                  f"({p['program']}) run {rep + 1}/{runs}")
                    r = replay_once(replayer, trace, p["index"], a, timed, timeout)
                    if r.status == "ok":
                        why = counts_match(r, p)
                        if why:
                            r = lab.Run("FAIL", "counts differ", hakmem=r.hakmem, wall=r.wall,
                                        stderr_tail=why)
                    per.append(r)
                run = combine(per, procs)
                run.lib_stamp = lab.library_stamp(a)
                cells[(row.name, t, a.label)].runs.append(run)
    progress.finish()
    return cells


# ---- the report ---------------------------------------------------------------------------------


def verdict_lines(rows, cells, allocs):
    """Per trace: the fastest allocator, the fastest hakmem configuration and by how much it
    beats the default one and glibc, and the one with the lowest peak RSS."""
    out = []
    for w, t in rows:
        def med(label, key):
            s = cells[(w.name, t, label)].stat(key)
            return s[0] if s else None
        times = {a.label: med(a.label, "secs") for a in allocs}
        times = {k: v for k, v in times.items() if v}
        if not times:
            out.append(f"- **{w.name}**: no run succeeded")
            continue
        best = min(times, key=times.get)
        line = f"- **{w.name}**: fastest {best} ({times[best]:.3g} s)"
        hk = {a.label: times[a.label] for a in allocs if a.kind == "hakmem" and a.label in times}
        if hk:
            hbest = min(hk, key=hk.get)
            line += f"; best hakmem configuration **{hbest}** ({hk[hbest]:.3g} s"
            base = hk.get("hakmem-default") or hk.get("hakmem")
            if base and hbest not in ("hakmem-default", "hakmem"):
                line += f", {base / hk[hbest]:.2f}× the speed of the default"
            if "glibc" in times:
                line += f", {times['glibc'] / hk[hbest]:.2f}× glibc's"
            peers = {k: v for k, v in times.items()
                     if any(a.label == k and a.kind == "peer" for a in allocs)}
            if peers:
                p = min(peers, key=peers.get)
                line += f", {peers[p] / hk[hbest]:.2f}× {p}'s"
            line += ")"
        rss = {a.label: med(a.label, "peak_rss_kb") for a in allocs}
        rss = {k: v for k, v in rss.items() if v}
        if rss:
            low = min(rss, key=rss.get)
            line += f"; lowest peak RSS {low} ({rss[low] / 1024:.1f} MB)"
            hkr = {k: v for k, v in rss.items() if any(a.label == k and a.kind == "hakmem" for a in allocs)}
            if hkr:
                hl = min(hkr, key=hkr.get)
                line += f", among hakmem configurations {hl} ({hkr[hl] / 1024:.1f} MB)"
        out.append(line)
    return out


def write_rss_curves(stem, rows, cells, allocs):
    """<stem>-rss-curve.png: per trace, RSS against the position in the trace (median run's
    series of each allocator). Returns None or why not."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (apt-get install -y gnuplot-nox): no plot"
    colours = lab.colour_of(allocs)
    base = os.path.basename(stem)
    with open(stem + "-rss-curve.dat", "w") as f:
        f.write("# one index per trace; columns: percent of the trace's operations, then RSS MB "
                "per allocator (the run with the median time)\n")
        for w, t in rows:
            series = []
            for a in allocs:
                c = cells[(w.name, t, a.label)]
                ok = sorted((r for r in c.runs if r.status == "ok"), key=lambda r: r.num("secs") or 0)
                s = ok[len(ok) // 2].result.get("rss_kb_series", "") if ok else ""
                series.append([int(x) for x in s.split(",") if x.isdigit()])
            n = max((len(s) for s in series), default=0)
            f.write(f"# {w.name}\n")
            for i in range(n):
                pct = 100.0 * i / (n - 1) if n > 1 else 0
                vals = [f"{s[i] / 1024:.3f}" if i < len(s) else "NaN" for s in series]
                f.write(f"{pct:.2f} " + " ".join(vals) + "\n")
            f.write("\n\n")
    panels = []
    for i, (w, t) in enumerate(rows):
        lines = ", \\\n     ".join(
            f"'{base}-rss-curve.dat' index {i} using 1:{j + 2} with linespoints lc rgb "
            f"'{colours[a.label]}' pt 7 ps 0.5 title '{a.label}'" for j, a in enumerate(allocs))
        panels.append(f'set title "{w.name}"\nplot {lines}')
    gp = f"""# Generated by hakmem replay; run `gnuplot {base}-rss-curve.gp` beside it.
set terminal pngcairo size 1200,{420 * len(rows) + 40} font ",9"
set output '{base}-rss-curve.png'
set datafile missing "NaN"
set xlabel "position in the trace (% of its operations)"
set ylabel "RSS, MB"
set grid
set key outside right
set multiplot layout {len(rows)},1 title "RSS over the trace, per allocator"
{chr(10).join(panels)}
unset multiplot
"""
    with open(stem + "-rss-curve.gp", "w") as f:
        f.write(gp)
    proc = subprocess.run(["gnuplot", base + "-rss-curve.gp"], cwd=os.path.dirname(stem) or ".",
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else "gnuplot failed: " + proc.stderr.strip()[:300]


def report(title, rows, cells, allocs, runs, notes, started, timed):
    labels = [a.label for a in allocs]
    md = [f"# {title}", "",
          f"- when: {started:%Y-%m-%d %H:%M:%S}, machine: {lab.machine_info()}",
          f"- each cell: median of {runs} run{'s' if runs > 1 else ''} (min–max) of "
          f"`hakmem-replay{' --timed' if timed else ''}` under the allocator, one process per "
          "recorded process; FAIL if a run crashed, timed out, found corruption, or did not replay "
          "exactly the trace's operations",
          "- allocators:"]
    for a in allocs:
        pol = lab.policies_seen(cells, a) if a.kind == "hakmem" else ""
        md.append(f"  - {a.label}: `{a.shell_prefix() or 'no LD_PRELOAD'}`"
                  + (f"; reported {pol}" if pol else ""))
    md += [f"- note: {n}" for n in notes]
    md.append("")
    md.append("## Which allocator, which configuration\n")
    md += verdict_lines(rows, cells, allocs)

    def table(heading, key, scale, higher=False, ratio=True):
        nonlocal md
        md += ["", f"## {heading}", "",
               lab.md_table(["trace", "threads"] + labels,
                            lab.value_rows(rows, cells, allocs, key, scale))]
        if ratio:
            md += ["", f"Relative to glibc / to the best peer ({'higher' if higher else 'lower'} is better):", "",
                   lab.md_table(["trace", "threads"] + labels + ["best peer"],
                                lab.ratio_rows(rows, cells, allocs, key, higher))]
    table("Replay time in s (median (min–max); lower is better)", "secs", 1.0)
    table("User CPU in s", "user_secs", 1.0, ratio=False)
    table("System CPU in s", "sys_secs", 1.0, ratio=False)
    table("Minor page faults", "minflt", 1.0, ratio=False)
    table("Peak RSS in MB (VmHWM, the replayer's own ~4 MB read-ahead included)", "peak_rss_kb",
          1024.0)
    table("RSS at the end of the trace in MB (what the program still held, and what the allocator "
          "kept)", "final_rss_kb", 1024.0, ratio=False)
    table("Mappings at the end (lines of /proc/self/maps)", "mappings", 1.0, ratio=False)
    moved = []
    for w, t in rows:
        line = [w.name, str(t)]
        for a in allocs:
            c = cells[(w.name, t, a.label)]
            ok = [r for r in c.runs if r.status == "ok"]
            if not ok:
                line.append("FAIL" if c.failed else "–")
                continue
            r = ok[0].result
            n = float(r.get("realloc", 0)) + float(r.get("realloc_moved", 0))
            line.append(f"{100 * float(r.get('moved_here', 0)) / n:.0f}%" if n else "–")
        moved.append(line)
    md += ["", "## Reallocs that moved the block (the recording: see `realloc_moved` below)", "",
           lab.md_table(["trace", "threads"] + labels, moved)]
    hk = lab.hakmem_rows(rows, cells, allocs)
    if hk:
        md += ["", "## hakmem counters from HAKMEM_STATS=json (medians; the largest process): "
               "SuperSlabs mapped / released / live at exit / peak live, share of remote frees, "
               "adoptions, peak mappings", "",
               lab.md_table(["trace", "threads", "config", "mapped", "released", "live",
                             "peak live", "remote frees", "adoptions", "peak mappings"], hk)]
    fails = [(w, a, r) for w, t in rows for a in allocs for r in cells[(w.name, t, a.label)].failed]
    if fails:
        md += ["", "## Failures", ""]
        for w, a, r in fails[:40]:
            tail = r.stderr_tail.replace("\n", " | ")[:240]
            md.append(f"- {w.name} {a.label}: {r.reason}" + (f": `{tail}`" if tail else ""))
    md += ["", "## Traces", ""]
    for w, _ in rows:
        md.append(f"- **{w.name}**: {w.doc}")
    return "\n".join(md) + "\n"


def ops_line(procs):
    tot = {op: sum(p["ops"].get(op, 0) for p in procs) for op in OPS}
    return ", ".join(f"{op} {n}" for op, n in tot.items() if n)


def write_outputs(stem, mode, rows, cells, allocs, md, no_plot):
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    row_secs = {(w.name, t): 0 for w, t in rows}
    lab.write_raw(stem, mode, rows, row_secs, cells, allocs)
    if not no_plot:
        notes = [lab.write_plot(stem, mode, rows, cells, allocs),
                 write_rss_curves(stem, rows, cells, allocs)]
        rel = os.path.basename(stem)
        if notes == [None, None]:
            md += (f"\nPlots: `{rel}-throughput.png`, `{rel}-rss.png`, `{rel}-rss-curve.png` "
                   "(scripts `.gp` beside them)\n")
        else:
            md += "\nPlot: " + "; ".join(n for n in notes if n) + "\n"
    with open(stem + ".md", "w") as f:
        f.write(md)
    return md


# ---- the lab's traces section (bench/run.py) -------------------------------------------------------


def big_c_source(path, functions=2000):
    """A large, deterministic C file (about 40 000 lines): structs, switches, loops, calls."""
    import random
    r = random.Random(13)
    with open(path, "w") as out:
        w = out.write
        w("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n\n")
        w("struct node { int key; double val; struct node *next; char name[24]; };\n")
        for i in range(functions):
            k = r.randint(3, 9)
            w(f"struct s{i} {{ " + " ".join(f"int f{j}; double g{j};" for j in range(k)) + " };\n")
            w(f"static double fn{i}(struct node *head, const int *v, int n, struct s{i} *s) {{\n")
            w("  double acc = 0; int i;\n")
            w(f"  for (i = 0; i < n; i++) {{\n    switch ((v[i] + {i}) % {k}) {{\n")
            for j in range(k):
                w(f"    case {j}: acc += s->g{j} * v[i] - s->f{j}; s->f{j} ^= v[i] << {j % 7}; break;\n")
            w("    default: acc -= 1; }\n  }\n")
            w(f"  for (struct node *p = head; p; p = p->next) {{ if (p->key % {r.randint(2, 17)} == "
              f"{r.randint(0, 1)}) acc += sqrt(p->val + {i}); else if (strcmp(p->name, \"n{i}\") == 0) "
              "acc *= 1.0001; }\n")
            w(f"  if (acc > {r.randint(100, 100000)}) {{ char buf[64]; snprintf(buf, sizeof buf, "
              "\"%d:%f\", n, acc); acc += strlen(buf); }\n")
            if i:
                w(f"  if (n > 1 && acc < 0) acc += fn{r.randrange(i)}(head ? head->next : 0, v + 1, "
                  "n - 1, (void *)s);\n")
            w("  return acc;\n}\n\n")
        w("int main(int argc, char **argv) {\n  int v[64]; double t = 0; (void)argv;\n"
          "  for (int i = 0; i < 64; i++) v[i] = i * argc;\n")
        for i in range(0, functions, max(1, functions // 200)):
            w(f"  {{ struct s{i} s; memset(&s, 0, sizeof s); t += fn{i}(0, v, 64, &s); }}\n")
        w('  printf("%f\\n", t);\n  return 0;\n}\n')


def sqlite_script(path, rows=60000):
    """Loading a table, indexing it, querying it: a deterministic SQL script."""
    import random
    r = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "tau", "rho", "phi"]
    with open(path, "w") as f:
        f.write("PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, "
                "grp INTEGER, score REAL, note TEXT);\nCREATE TABLE g(grp INTEGER PRIMARY KEY, "
                "label TEXT);\nBEGIN;\n")
        for i in range(rows):
            name = "-".join(r.choice(words) for _ in range(r.randint(1, 4)))
            f.write(f"INSERT INTO t VALUES({i},'{name}{i % 977}',{r.randint(0, 499)},"
                    f"{r.random() * 1000:.3f},'{'x' * r.randint(0, 120)}');\n")
        for g in range(500):
            f.write(f"INSERT INTO g VALUES({g},'group {g} {r.choice(words)}');\n")
        f.write("COMMIT;\nCREATE INDEX t_grp ON t(grp);\nCREATE INDEX t_name ON t(name);\n"
                "SELECT grp, count(*), avg(score), max(length(note)) FROM t GROUP BY grp ORDER BY 3 "
                "DESC LIMIT 5;\n"
                "SELECT g.label, count(*) FROM t JOIN g USING(grp) WHERE t.name LIKE '%gamma%' "
                "GROUP BY g.label ORDER BY 2 DESC LIMIT 5;\n"
                "SELECT name, score FROM t ORDER BY score DESC, name LIMIT 10;\n"
                "SELECT count(DISTINCT name) FROM t;\n"
                "UPDATE t SET note = upper(note) || name WHERE grp % 7 = 3;\n"
                "DELETE FROM t WHERE id % 5 = 0;\nVACUUM;\n"
                "SELECT sum(length(note)), total(score) FROM t;\n")


def lab_programs(work):
    """The real programs found on this machine: (name, argv, extra env, what it is), or why a
    program is missing."""
    progs, missing = [], []
    gcc = shutil.which("gcc")
    if gcc:
        src = os.path.join(work, "big.c")
        big_c_source(src)
        lines = sum(1 for _ in open(src))
        progs.append(("gcc", [gcc, "-O2", "-c", src, "-o", os.path.join(work, "big.o")], {},
                      f"gcc -O2 -c of a generated {lines}-line C file (the driver, cc1 and as)"))
    else:
        missing.append("gcc (apt-get install -y gcc)")
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    stdlib = None
    packages = ["email", "json", "xml", "http", "asyncio", "unittest", "concurrent", "logging"]
    if py:
        stdlib = subprocess.run([py, "-c", "import os; print(os.path.dirname(os.__file__))"],
                                capture_output=True, text=True).stdout.strip()
    tests = ["test_json", "test_re", "test_ast", "test_difflib"]
    if py and stdlib and all(os.path.exists(os.path.join(stdlib, "test", t + ".py")) or
                             os.path.isdir(os.path.join(stdlib, "test", t)) for t in tests):
        progs.append(("python3", [py, "-m", "test", "-q"] + tests, {"PYTHONMALLOC": "malloc"},
                      f"PYTHONMALLOC=malloc {os.path.basename(py)} -m test {' '.join(tests)} (its own "
                      "test suite, in one process)"))
    elif py and stdlib and os.path.isdir(os.path.join(stdlib, "email")):
        dst = os.path.join(work, "pylib")
        shutil.rmtree(dst, ignore_errors=True)
        for pkg in packages:
            if os.path.isdir(os.path.join(stdlib, pkg)):
                shutil.copytree(os.path.join(stdlib, pkg), os.path.join(dst, pkg),
                                ignore=shutil.ignore_patterns("__pycache__"))
        progs.append(("python3", [py, "-m", "compileall", "-q", "-f", dst], {"PYTHONMALLOC": "malloc"},
                      f"PYTHONMALLOC=malloc {os.path.basename(py)} -m compileall -f on a copy of the "
                      f"standard library's {', '.join(packages)} packages"))
    else:
        missing.append("python3 (apt-get install -y python3)")
    sq = shutil.which("sqlite3")
    if sq:
        script = os.path.join(work, "load.sql")
        sqlite_script(script)
        progs.append(("sqlite3", [sq, os.path.join(work, "lab.db")], {"<": script},
                      "sqlite3 loading 60 000 rows into a table, indexing, joining, grouping, "
                      "updating, deleting and vacuuming"))
    else:
        missing.append("sqlite3 (apt-get install -y sqlite3)")
    return progs, missing


def run_timed(argv, env, stdin_path, cwd):
    """(wall seconds, user+sys CPU of the process tree, exit status, stderr)."""
    before = os.times()
    start = time.monotonic()
    with open(stdin_path or os.devnull) as inp:
        proc = subprocess.run(argv, env=env, stdin=inp, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace", cwd=cwd)
    wall = time.monotonic() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, proc.returncode, proc.stderr


def record_lab_traces(work, hakmem_lib, conf):
    """Records each program (after a run without recording, for the cost); returns
    ([(name, trace, doc, cost)], notes)."""
    progs, missing = lab_programs(work)
    notes = [f"not recorded, missing: {m}" for m in missing]
    out = []
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("HAKMEM_")}
    for name, argv, extra, doc in progs:
        stdin_path = extra.get("<")
        env = dict(base, **{k: v for k, v in extra.items() if k != "<"}, LD_PRELOAD=hakmem_lib,
                   HAKMEM_CONF=conf)
        if name == "sqlite3":
            for f in ("lab.db", "lab.db-wal", "lab.db-shm"):
                if os.path.exists(os.path.join(work, f)):
                    os.unlink(os.path.join(work, f))
        plain = run_timed(argv, env, stdin_path, work)
        if name == "sqlite3":
            for f in ("lab.db", "lab.db-wal", "lab.db-shm"):
                if os.path.exists(os.path.join(work, f)):
                    os.unlink(os.path.join(work, f))
        trace = os.path.join(work, name + ".trace")
        rec = run_timed(argv, dict(env, HAKMEM_TRACE=trace), stdin_path, work)
        if rec[2] != 0 or plain[2] != 0 or rec[3].strip():
            notes.append(f"{name}: recording failed (exit {plain[2]} / {rec[2]}): {rec[3].strip()[:200]}")
            continue
        cost = (rec[0] / plain[0] if plain[0] else None, rec[1] / plain[1] if plain[1] else None)
        out.append((name, trace, doc, cost, plain, rec))
    return out, notes


def lab_traces(replayer, hakmem_lib, conf_default, allocs, runs, out_dir, no_plot, started=None):
    """The benchmark lab's traces section: returns its Markdown (also written as
    <out>/<date>-traces.{md,csv,json,png})."""
    started = started or datetime.datetime.now()
    work = os.path.join(out_dir, "traces")
    os.makedirs(work, exist_ok=True)
    print("traces: recording gcc, python3 and sqlite3 under hakmem (and once without recording)",
          file=sys.stderr)
    recorded, notes = record_lab_traces(work, hakmem_lib, conf_default)
    rows_spec, cost_rows = [], []
    for name, trace, doc, cost, plain, rec in recorded:
        procs, summary = trace_info(replayer, trace)
        procs = [p for p in procs if p["events"] > 0]
        if summary.get("error"):
            notes.append(f"{name}: the trace is incomplete: {summary['error']}")
        row = trace_row(name, trace, procs)
        row.doc = doc + "; " + row.doc
        rows_spec.append((row, trace, procs))
        cost_rows.append([name, f"{plain[0]:.2f}", f"{rec[0]:.2f}", lab.fmt_ratio(cost[0]),
                          f"{plain[1]:.2f}", f"{rec[1]:.2f}", lab.fmt_ratio(cost[1]),
                          f"{os.path.getsize(trace) / 1048576:.1f}",
                          str(sum(p["events"] for p in procs))])
    if not rows_spec:
        return "\n## Traces of real programs\n\nNothing recorded: " + "; ".join(notes) + "\n"
    cells = replay_matrix(replayer, [(r, t, p) for r, t, p in rows_spec], allocs, runs, False,
                          "traces")
    rows = [(r, max(p["max_live_threads"] for p in procs)) for r, _, procs in rows_spec]
    md = report("hakmem benchmark lab: traces of real programs, replayed", rows, cells, allocs, runs,
                notes, started, False)
    md += ("\n## What recording costs (the program under hakmem's default configuration, one run "
           "each, without and with HAKMEM_TRACE; wall time is only meaningful on a quiet machine)\n\n"
           + lab.md_table(["program", "wall s", "wall s recording", "ratio", "CPU s", "CPU s recording",
                           "ratio", "trace MB", "operations"], cost_rows) + "\n")
    md += ("\nReproduce: `hakmem record -o T -- <program>` then `hakmem replay T --config conf/<name>.ini "
           "... --alloc glibc,mimalloc,jemalloc,tcmalloc`; the traces are kept in "
           f"`{os.path.relpath(work, lab.ROOT) if work.startswith(lab.ROOT) else work}/`.\n")
    stem = os.path.join(out_dir, f"{started:%Y%m%d-%H%M%S}-traces")
    return write_outputs(stem, "traces", rows, cells, allocs, md, no_plot)


# ---- hakmem replay ------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(prog="hakmem replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--config", action="append", metavar="FILE.ini",
                    help="hakmem with this configuration (repeatable)")
    ap.add_argument("--alloc", action="append", metavar="NAME",
                    help="glibc, mimalloc, jemalloc, tcmalloc, hakmem (HAKMEM_CONF as set) or "
                         "PATH.so (repeatable, or comma-separated)")
    ap.add_argument("--runs", type=int, default=3, help="runs per allocator (default 3)")
    ap.add_argument("--timed", action="store_true",
                    help="keep the recorded times (pauses included) instead of going flat out")
    ap.add_argument("--process", default="all",
                    help="which recorded process: its number in `--info`, or all (default)")
    ap.add_argument("--out", help="folder for the .md/.csv/.json/.png files (default: the trace's)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--info", action="store_true", help="only say what the trace holds")
    ap.add_argument("--replayer", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--hakmem-lib", required=True, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runs < 1:
        fail("--runs must be at least 1")
    if not os.path.isfile(args.trace):
        fail(f"{args.trace}: no such file")
    procs, summary = trace_info(args.replayer, args.trace)
    if args.info:
        print(f"{args.trace}: format {summary['format']}, {summary['processes']} process(es)"
              + (f"; {summary['error']}" if summary.get("error") else ""))
        for p in procs:
            flags = " (forked)" if p["forked"] else " (executed)" if p["execed"] else ""
            print(f"  {p['index']}: pid {p['pid']} {p['program']}{flags}: {p['events']} operations, "
                  f"{p['threads']} threads (at most {p['max_live_threads']} at once), "
                  f"{p['seconds']:.3f} s; {ops_line([p])}"
                  + ("" if p["ended"] else "; no END record (killed, or still running)"))
        return 0
    if args.process != "all":
        try:
            want = int(args.process)
        except ValueError:
            fail(f"--process {args.process}: expected a number or all")
        procs = [p for p in procs if p["index"] == want]
        if not procs:
            fail(f"--process {want}: no such process (hakmem replay --info {args.trace})")
    procs = [p for p in procs if p["events"] > 0]
    if not procs:
        fail(f"{args.trace}: no operations recorded")
    allocs = allocators_from(args)
    notes = []
    if summary.get("error"):
        notes.append(f"the trace is incomplete: {summary['error']}")
    notes.append(f"the trace holds {ops_line(procs)}")
    label = os.path.basename(args.trace)
    row = trace_row(label, os.path.abspath(args.trace), procs)
    t = max(p["max_live_threads"] for p in procs)
    started = datetime.datetime.now()
    cells = replay_matrix(args.replayer, [(row, os.path.abspath(args.trace), procs)], allocs,
                          args.runs, args.timed)
    rows = [(row, t)]
    md = report(f"hakmem replay: {label}", rows, cells, allocs, args.runs, notes, started, args.timed)
    out = args.out or os.path.dirname(os.path.abspath(args.trace))
    stem = os.path.join(out, f"{os.path.splitext(label)[0]}-replay-{started:%Y%m%d-%H%M%S}")
    md = write_outputs(stem, "replay", rows, cells, allocs, md, args.no_plot)
    print(md)
    print(f"written: {stem}.{{md,csv,json}}" + ("" if args.no_plot else " and plots"), file=sys.stderr)
    return 1 if any(c.failed for c in cells.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
