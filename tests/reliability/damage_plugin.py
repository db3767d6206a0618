#!/usr/bin/env python3
"""damage_plugin.py SRC OUTDIR: writes damaged copies of the real plugin SRC (a shared object
`make` built), each as OUTDIR/<case>/<basename of SRC>, mode 0644, folders 0755, and the
untouched copy as OUTDIR/whole/. The cases are the damage issue 14 found kills a host under a
plain dlopen: a partial copy (cut at 700, 4096, 6164 and 9000 bytes, 16 bytes before the end of
the last PT_LOAD segment's file extent, with and without section headers), an empty file, random
bytes, and a file for another machine, class or type. Prints one line per case:
"<case> <size> <what the refusal must say>"."""
import os
import random
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
base = os.path.basename(src)
# ELF64 little-endian header: e_phoff at 32, e_shoff at 40, e_phentsize/e_phnum at 54/56,
# e_shentsize/e_shnum/e_shstrndx at 58/60/62.
phoff, shoff = struct.unpack_from("<QQ", data, 32)
phentsize, phnum = struct.unpack_from("<HH", data, 54)
load_end = 0
for i in range(phnum):
    p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
    if p_type == 1:  # PT_LOAD
        load_end = max(load_end, p_offset + p_filesz)


def patched(offset, fmt, *values, blob=data):
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


# Section headers gone (e_shoff, e_shentsize, e_shnum, e_shstrndx = 0), as sstrip leaves a file.
no_sections = patched(58, "<HHH", 0, 0, 0, blob=patched(40, "<Q", 0))
rng = random.Random(14)
cases = [
    ("whole", data, ""),
    ("empty", b"", "empty file (0 bytes), expected an ELF shared object"),
    ("random", bytes(rng.randrange(256) for _ in range(len(data))), "not an ELF file (starts with"),
]
for cut in (700, 4096, 6164, 9000):
    if cut < len(data):
        cases.append(("cut%d" % cut, data[:cut], "ELF file of %d bytes, expected at least" % cut))
cases.append(("cut_load_minus16", data[:load_end - 16],
              "ELF file of %d bytes, expected at least %d (PT_LOAD" % (load_end - 16, len(data))))
cases.append(("cut_load_minus16_nosections", no_sections[:load_end - 16],
              "ELF file of %d bytes, expected at least %d (PT_LOAD (program header" % (load_end - 16, load_end)))
machine = struct.unpack_from("<H", data, 18)[0]
other, other_name = (62, "x86-64") if machine == 183 else (183, "AArch64")
cases.append(("machine_other", patched(18, "<H", other), "ELF machine %d (%s), expected %d" % (other, other_name, machine)))
cases.append(("class32", patched(4, "B", 1), "ELF class 1 (32-bit), expected 2 (64-bit"))
cases.append(("big_endian", patched(5, "B", 2), "ELF byte order 2 (big-endian)"))
cases.append(("executable", patched(16, "<H", 2), "ELF type 2 (an executable)"))
os.makedirs(out, exist_ok=True)
os.chmod(out, 0o755)
for name, blob, why in cases:
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    path = os.path.join(d, base)
    with open(path, "wb") as f:
        f.write(blob)
    os.chmod(path, 0o644)
    print("%s %d %s" % (name, len(blob), why))
