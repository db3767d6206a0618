#!/usr/bin/env python3
"""make_elf_seeds.py [PLUGIN]: writes the seed files for fuzz_elf into corpus/elf/, made from a
real plugin `make` built (default build/policies/trim_none.so, the smallest): the whole file, the
file without section headers, cuts (700, 4096, 6164, 9000 bytes, 16 bytes before the end of the
last PT_LOAD segment), header fields changed one at a time (machine, class, byte order, type,
program header count and offset), a PT_LOAD past the end, the dynamic section's end marker
removed, random bytes and an empty file. Run from the top of the checkout; the output is
committed."""
import os
import random
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else "build/policies/trim_none.so"
data = open(src, "rb").read()
out = os.path.join(here, "corpus", "elf")
os.makedirs(out, exist_ok=True)

phoff, shoff = struct.unpack_from("<QQ", data, 32)
phentsize, phnum = struct.unpack_from("<HH", data, 54)
phdrs = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
loads = [i for i, p in enumerate(phdrs) if p[0] == 1]
dyn = [i for i, p in enumerate(phdrs) if p[0] == 2][0]
load_end = max(phdrs[i][2] + phdrs[i][5] for i in loads)


def patched(offset, fmt, *values, blob=data):
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def ph_field(i, field, value, blob=data):
    # Elf64_Phdr: p_type, p_flags (I, I), p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align (Q)
    offsets = {"type": 0, "offset": 8, "vaddr": 16, "filesz": 32, "memsz": 40, "align": 48}
    fmt = "<I" if field == "type" else "<Q"
    return patched(phoff + i * phentsize + offsets[field], fmt, value, blob=blob)


no_sections = patched(58, "<HHH", 0, 0, 0, blob=patched(40, "<Q", 0))
dyn_off, dyn_size = phdrs[dyn][2], phdrs[dyn][5]
no_null = bytearray(data)
for k in range(dyn_off, dyn_off + dyn_size, 16):
    if struct.unpack_from("<q", no_null, k)[0] == 0:
        struct.pack_into("<q", no_null, k, 21)  # DT_DEBUG
rng = random.Random(14)
seeds = {
    "whole": data,
    "no_sections": no_sections[:load_end],  # loadable: nothing past the last segment is needed
    "empty": b"",
    "magic_only": data[:4],
    "header_only": data[:64],
    "random_1k": bytes(rng.randrange(256) for _ in range(1024)),
    "cut700": data[:700],
    "cut4096": data[:4096],
    "cut6164": data[:6164],
    "cut9000": data[:9000],
    "cut_load_minus16": no_sections[:load_end - 16],
    "machine_aarch64": patched(18, "<H", 183)[:2048],
    "class32": patched(4, "B", 1)[:2048],
    "big_endian": patched(5, "B", 2)[:2048],
    "type_exec": patched(16, "<H", 2)[:2048],
    "phnum_huge": patched(56, "<H", 0xffff)[:2048],
    "phoff_past_end": patched(32, "<Q", len(data) - 8)[:2048],
    "load_past_end": ph_field(loads[-1], "filesz", len(data), blob=no_sections)[:load_end],
    "load_misaligned": ph_field(loads[-1], "vaddr", phdrs[loads[-1]][3] + 8, blob=no_sections)[:load_end],
    "dynamic_no_null": bytes(no_null[:load_end]),
}
for name, blob in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
print("%d seeds in %s from %s (%d bytes)" % (len(seeds), out, src, len(data)))
