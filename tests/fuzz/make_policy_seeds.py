#!/usr/bin/env python3
"""Writes the hand-made seed descriptors for fuzz_policy into corpus/policy/ (see the input
format at the top of fuzz_policy.c). Run from anywhere; the output is committed."""
import os
import struct

MAGIC = 0x314C4F50484B4148
SIG = b"hakmem-abi-2/ptr8/1234/link-word0-mark-word1"
SIZE_2_0 = 144

F = {n: 1 << i for i, n in enumerate(
    "signature name version summary init fini trim superslab ownership lg_size_for refill flush "
    "free_foreign thread_exit fork_prepare fork_parent fork_child consolidate want_name desc_null "
    "avail_unknown trim_ops".split())}
STRINGS = F["signature"] | F["name"] | F["version"] | F["summary"] | F["init"] | F["fini"]
OWN = F["ownership"] | F["refill"] | F["flush"] | F["free_foreign"] | F["thread_exit"]


def seed(kind, flags, name=b"x", want_kind=None, want_name=None, magic=MAGIC, major=2, minor=0,
         size=SIZE_2_0, avail=SIZE_2_0, tstate=64, errlen=200, sig=SIG, extra=0):
    if want_name is not None:
        flags |= F["want_name"]
    head = struct.pack("<QIIQIIQIIII", magic, major, minor, size, kind,
                       kind if want_kind is None else want_kind, avail, flags, tstate, errlen, extra)
    return head + b"\0".join([sig, name, b"1.0.0", b"a seed", want_name or b""]) + b"\0"


seeds = {
    "trim_ok": seed(1, STRINGS | F["trim"] | F["trim_ops"], b"eager", want_name=b"eager"),
    "superslab_ok": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"adaptive", want_name=b"adaptive"),
    "ownership_ok": seed(3, STRINGS | OWN | F["fork_prepare"] | F["fork_parent"] | F["fork_child"]
                         | F["consolidate"], b"central", want_name=b"central"),
    "ownership_any_kind": seed(3, STRINGS | OWN, b"tls", want_kind=0),
    "newer_minor_bigger": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"fixed", minor=7,
                               size=SIZE_2_0 + 48, avail=SIZE_2_0 + 48),
    "avail_unknown": seed(1, STRINGS | F["trim"] | F["avail_unknown"], b"none"),
    "bad_magic": seed(1, STRINGS | F["trim"], b"none", magic=0x1122334455667788),
    "abi1": seed(3, STRINGS | OWN, b"abi1", major=1),
    "abi3": seed(3, STRINGS | OWN, b"abi3", major=3),
    "newer_core_needed": seed(3, STRINGS | OWN, b"tls", extra=1),
    "short_ops_table": seed(3, STRINGS | OWN, b"tls", extra=4),
    "settings_spec": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"fixed", extra=32 | 8),
    "settings_count_no_spec": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"fixed", extra=16),
    "short_object": seed(3, STRINGS | OWN, b"small", avail=40),
    "tiny_object": seed(3, STRINGS | OWN, b"tiny", avail=4),
    "small_size_field": seed(3, STRINGS | OWN, b"small", size=64),
    "bad_signature": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"fixed",
                          sig=b"hakmem-abi-2/ptr4/4321/link-word0-mark-word1"),
    "long_signature": seed(2, STRINGS | F["superslab"] | F["lg_size_for"], b"fixed", sig=SIG + b"/" + b"A" * 300),
    "no_signature": seed(2, (STRINGS & ~F["signature"]) | F["superslab"] | F["lg_size_for"], b"fixed"),
    "wrong_kind": seed(1, STRINGS | F["trim"], b"eager", want_kind=3),
    "kind_zero": seed(0, STRINGS | F["trim"], b"eager", want_kind=0),
    "misnamed": seed(3, STRINGS | OWN, b"central", want_name=b"tls"),
    "name_traversal": seed(3, STRINGS | OWN, b"../../tmp/evil", want_name=b"evil"),
    "name_control": seed(3, STRINGS | OWN, b"bad\x1b[31mname\x7f", want_kind=0),
    "name_long": seed(3, STRINGS | OWN, b"n" * 200, want_kind=0),
    "no_name": seed(3, (STRINGS & ~F["name"]) | OWN, b"", want_name=b"tls"),
    "no_init": seed(3, (STRINGS & ~F["init"]) | OWN, b"tls"),
    "no_refill": seed(3, STRINGS | (OWN & ~F["refill"]), b"norefill"),
    "fork_half": seed(3, STRINGS | OWN | F["fork_prepare"], b"forkhalf"),
    "big_tstate": seed(3, STRINGS | OWN, b"big", tstate=1 << 20),
    "no_ops": seed(2, STRINGS, b"fixed"),
    "null_descriptor": seed(3, STRINGS | OWN | F["desc_null"], b"tls"),
    "tiny_errlen": seed(3, STRINGS | OWN, b"central", want_name=b"tls", errlen=3),
    "zero_errlen": seed(1, STRINGS | F["trim"], b"eager", magic=0, errlen=0),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "policy")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
