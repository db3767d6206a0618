#!/usr/bin/env python3
"""check_introspect.py DIR: checks what tests/e2e/introspect wrote into DIR.

info-before.xml, info-after.xml: malloc_info(0, fp) before and after allocating 8 MB of small
blocks and a 40 MB block, each with the mallinfo2 figures of the same moment (*.mi).
stats.txt: malloc_stats() while holding them, with stats.mi.

The XML is parsed with xml.dom.minidom and must have glibc's structure; the figures must agree
with mallinfo2 and move with the allocations. Under glibc and under hakmem: where the two
differ by design (hakmem counts large blocks in arena and uordblks) the check says so.
Prints one summary line; exits 1 with the reasons on a failure.
"""
import re
import sys
import xml.dom.minidom

d = sys.argv[1]
errs = []


def fail(msg):
    print(msg)
    sys.exit(1)


def mallinfo(name):
    text = open("%s/%s.mi" % (d, name)).read()
    return {k: int(v) for k, v in (line.split("=") for line in text.split())}


PER_HEAP = ["total.fast.count", "total.fast.size", "total.rest.count", "total.rest.size",
            "system.current.size", "system.max.size", "aspace.total.size", "aspace.mprotect.size"]
TOTALS = ["total.fast.count", "total.fast.size", "total.rest.count", "total.rest.size",
          "total.mmap.count", "total.mmap.size", "system.current.size", "system.max.size",
          "aspace.total.size", "aspace.mprotect.size"]


def elements(node):
    return [n for n in node.childNodes if n.nodeType == n.ELEMENT_NODE]


def figures(name, node, where, want):
    """The <total>, <system> and <aspace> children of node, as {"total.fast.size": n, ...}."""
    f = {}
    for n in elements(node):
        if n.tagName not in ("total", "system", "aspace"):
            continue
        key = "%s.%s" % (n.tagName, n.getAttribute("type"))
        for a in ("count", "size"):
            if n.hasAttribute(a):
                v = n.getAttribute(a)
                if not v.isdigit():
                    fail("%s.xml: %s %s %s=%r is not a number" % (name, where, key, a, v))
                f[key + "." + a] = int(v)
    missing = [k for k in want if k not in f]
    if missing:
        fail("%s.xml: %s lacks %s" % (name, where, ", ".join(missing)))
    return f


def parse(name):
    text = open("%s/%s.xml" % (d, name)).read()
    try:
        doc = xml.dom.minidom.parseString(text)
    except Exception as e:  # expat's ExpatError, with line and column
        fail("%s.xml is not well-formed XML: %s" % (name, e))
    root = doc.documentElement
    if root.tagName != "malloc" or root.getAttribute("version") != "1":
        fail("%s.xml: root <%s version=%r>, want <malloc version=\"1\">"
             % (name, root.tagName, root.getAttribute("version")))
    heaps = [n for n in elements(root) if n.tagName == "heap"]
    if not heaps:
        fail("%s.xml: no <heap>" % name)
    hs = []
    for i, h in enumerate(heaps):
        if h.getAttribute("nr") != str(i):
            fail("%s.xml: heap %d has nr=%r" % (name, i, h.getAttribute("nr")))
        sizes = [n for n in elements(h) if n.tagName == "sizes"]
        if len(sizes) != 1:
            fail("%s.xml: heap %d has %d <sizes>" % (name, i, len(sizes)))
        for s in elements(sizes[0]):
            vals = [s.getAttribute(a) for a in ("from", "to", "total", "count")]
            if not all(v.isdigit() for v in vals) or int(vals[0]) > int(vals[1]):
                fail("%s.xml: heap %d: bad <%s> %r" % (name, i, s.tagName, vals))
        f = figures(name, h, "heap %d" % i, PER_HEAP)
        if f["system.max.size"] < f["system.current.size"]:
            errs.append("%s: heap %d system max < current" % (name, i))
        hs.append(f)
    return hs, figures(name, root, "the totals", TOTALS)


def consistent(name, hs, tot, m):
    hak = m["hakmem"] == 1
    if sum(h["total.fast.size"] for h in hs) != tot["total.fast.size"]:
        errs.append("%s: the heaps' fast sizes do not add up to the total" % name)
    if tot["total.mmap.count"] != m["hblks"] or tot["total.mmap.size"] != m["hblkhd"]:
        errs.append("%s: mmap count/size %d/%d, mallinfo2 hblks/hblkhd %d/%d"
                    % (name, tot["total.mmap.count"], tot["total.mmap.size"], m["hblks"], m["hblkhd"]))
    free = tot["total.fast.size"] + tot["total.rest.size"]
    if free != m["fordblks"]:
        errs.append("%s: fast + rest = %d, mallinfo2 fordblks %d" % (name, free, m["fordblks"]))
    if tot["total.fast.size"] != m["fsmblks"]:
        errs.append("%s: fast size %d, mallinfo2 fsmblks %d" % (name, tot["total.fast.size"], m["fsmblks"]))
    # glibc's arena is its heap; hakmem's counts the large mappings too.
    want = m["arena"] - m["hblkhd"] if hak else m["arena"]
    if tot["system.current.size"] != want:
        errs.append("%s: system current %d, want %d from mallinfo2" % (name, tot["system.current.size"], want))


hb, tb = parse("info-before")
ha, ta = parse("info-after")
mb, ma = mallinfo("info-before"), mallinfo("info-after")
consistent("info-before", hb, tb, mb)
consistent("info-after", ha, ta, ma)
if ta["total.mmap.count"] < tb["total.mmap.count"] + 1 or ta["total.mmap.size"] < tb["total.mmap.size"] + (40 << 20):
    errs.append("the mmap total did not grow by the 40 MB block: %d/%d -> %d/%d"
                % (tb["total.mmap.count"], tb["total.mmap.size"], ta["total.mmap.count"], ta["total.mmap.size"]))
if ta["system.current.size"] < tb["system.current.size"] + (4 << 20):
    errs.append("system current went from %d to %d with 8 MB of small blocks more"
                % (tb["system.current.size"], ta["system.current.size"]))

# ---- malloc_stats ----
ms = mallinfo("stats")
hak = ms["hakmem"] == 1
lines = open("%s/stats.txt" % d).read().splitlines()
ARENA = [r"Arena (\d+):", r"system bytes     = +(\d+)", r"in use bytes     = +(\d+)"]
TAIL = [r"Total \(incl\. mmap\):", r"system bytes     = +(\d+)", r"in use bytes     = +(\d+)",
        r"max mmap regions = +(\d+)", r"max mmap bytes   = +(\d+)"]
arenas, i = [], 0
while i + 2 < len(lines) and re.fullmatch(ARENA[0], lines[i]):
    m = [re.fullmatch(p, line) for p, line in zip(ARENA, lines[i:i + 3])]
    if not all(m):
        fail("malloc_stats: bad arena lines %r" % lines[i:i + 3])
    if int(m[0].group(1)) != len(arenas):
        errs.append("malloc_stats: arena %s out of order" % m[0].group(1))
    arenas.append((int(m[1].group(1)), int(m[2].group(1))))
    i += 3
m = [re.fullmatch(p, line) for p, line in zip(TAIL, lines[i:])]
if not arenas or len(lines) != i + 5 or not all(m):
    fail("malloc_stats: want 'Arena N:' blocks then the 5 total lines, got %r" % lines[:14])
sys_t, use_t, regions, mbytes = (int(x.group(1)) for x in m[1:])
if use_t < ms["held"]:
    errs.append("malloc_stats: in use %d < the %d bytes the program holds" % (use_t, ms["held"]))
if any(u > s for s, u in arenas) or use_t > sys_t:
    errs.append("malloc_stats: in use above system bytes: %r, total %d/%d" % (arenas, sys_t, use_t))
if regions < 1 or mbytes < (40 << 20):
    errs.append("malloc_stats: max mmap regions %d, bytes %d with a 40 MB block held" % (regions, mbytes))
# glibc adds its mapped blocks to the arenas' figures; hakmem's mallinfo2 counts them already.
if hak:
    want = (ms["arena"], ms["uordblks"])
    arenas_in_use = ms["uordblks"] - ms["hblkhd"]
else:
    want = (ms["arena"] + ms["hblkhd"], ms["uordblks"] + ms["hblkhd"])
    arenas_in_use = ms["uordblks"]
if (sys_t, use_t) != want:
    errs.append("malloc_stats: total system/in use %d/%d, want %d/%d from mallinfo2" % (sys_t, use_t, want[0], want[1]))
if sum(u for s, u in arenas) != arenas_in_use:
    errs.append("malloc_stats: the arenas' in use bytes add up to %d, mallinfo2 says %d"
                % (sum(u for s, u in arenas), arenas_in_use))
if errs:
    fail("; ".join(errs))
print("%d heap(s); holding %.1f MB: uordblks %.1f MB, malloc_stats in use %.1f MB, XML and lines as glibc's"
      % (len(ha), ma["held"] / 1048576, ma["uordblks"] / 1048576, use_t / 1048576))
