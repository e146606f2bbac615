"""Checks the CPU runtime (runtime/lib/CpuRuntime.cpp) through
attnres-cpu-runtime-probe against models of the two functions written here
from their definitions:

- __truncsfbf2: the bf16 value nearest to the f32 input, found by comparing
  the two bf16 neighbours in float64 arithmetic (ties to the even mantissa);
  past the largest finite bf16 infinity counts as 2^128 (IEEE overflow);
  infinities and signed zeros kept; any NaN gives a NaN of the same sign.
- memrefCopy: element (i_0, .., i_R-1) of the destination buffer (at
  doff + sum i_k dstride_k) takes the source's element (at soff + sum i_k
  sstride_k); every other destination byte keeps its 0xaa.

Inputs are random (seeded) plus the edge cases: exact ties, values that
round to infinity, subnormals, NaN payloads; ranks 0..4, empty sizes,
element sizes 1, 2, 4, 8, transposed and padded strides. Usage:
cpu_runtime_check.py PROBE; prints one line per check and "all passed".
"""
import itertools
import math
import random
import struct
import subprocess
import sys

probe = sys.argv[1]
rng = random.Random(20261207)
failures = 0


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def bf16_value(bits16):
    return f32(bits16 << 16)


def nearest_bf16(bits):
    """The bf16 bit pattern nearest to the f32 `bits` (None for NaN)."""
    x = f32(bits)
    if math.isnan(x):
        return None
    if math.isinf(x) or x == 0.0:
        return bits >> 16
    lo = bits >> 16                      # truncation: toward zero
    hi = lo + 1                          # the next one away from zero
    d_lo = abs(x - bf16_value(lo))       # exact in float64
    # Past the largest finite bf16 the next value is infinity, which IEEE
    # rounding places at 2^128 (the next power of two) for the comparison.
    v_hi = bf16_value(hi)
    if math.isinf(v_hi):
        v_hi = math.copysign(2.0 ** 128, x)
    d_hi = abs(v_hi - x)
    if d_lo < d_hi:
        return lo
    if d_hi < d_lo:
        return hi
    return lo if lo % 2 == 0 else hi


# --- __truncsfbf2 ---------------------------------------------------------
inputs = [0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x3f800000,
          0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7fffff,
          0xff7fffff, 0x7f7f8000, 0x00000001, 0x00008000, 0x00018000,
          0x007fffff, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff]
inputs += [rng.getrandbits(32) for _ in range(20000)]
inputs += [struct.unpack("<I", struct.pack("<f", rng.uniform(-1e3, 1e3)))[0]
           for _ in range(5000)]
out = subprocess.run([probe, "bf16"], input="".join("%08x\n" % b for b in inputs),
                     capture_output=True, text=True, check=True).stdout.split()
assert len(out) == len(inputs), (len(out), len(inputs))
bad = 0
for b, o in zip(inputs, out):
    got = int(o, 16)
    want = nearest_bf16(b)
    if want is None:
        ok = (got & 0x7f80) == 0x7f80 and (got & 0x7f) != 0 and (got >> 15) == (b >> 31)
    else:
        ok = got == want
    if not ok:
        bad += 1
        if bad <= 5:
            print("bf16 mismatch: f32 %08x -> %04x, expected %s" % (
                b, got, "NaN" if want is None else "%04x" % want))
print("bf16: %d inputs, %d mismatches" % (len(inputs), bad))
failures += bad


# --- memrefCopy -----------------------------------------------------------
def model_copy(elem, sizes, soff, ss, doff, ds):
    def extent(off, strides):
        return (off + 1 + sum((s - 1) * st for s, st in zip(sizes, strides))) * elem
    src = bytes(i % 251 for i in range(extent(soff, ss)))
    dst = bytearray([0xaa] * extent(doff, ds))
    if all(s > 0 for s in sizes):
        for ix in itertools.product(*[range(s) for s in sizes]):
            si = (soff + sum(i * st for i, st in zip(ix, ss))) * elem
            di = (doff + sum(i * st for i, st in zip(ix, ds))) * elem
            dst[di:di + elem] = src[si:si + elem]
    return dst.hex()


def contiguous(sizes, pad=0):
    strides, acc = [], 1
    for s in reversed(sizes):
        strides.insert(0, acc)
        acc *= s + pad
    return strides


cases = [(4, [], 3, [], 1, []), (2, [0, 5], 0, [5, 1], 0, [5, 1]), (1, [7], 2, [1], 0, [1])]
for _ in range(60):
    rank = rng.randint(1, 4)
    sizes = [rng.randint(1, 5) for _ in range(rank)]
    elem = rng.choice([1, 2, 4, 8])
    kinds = ["contiguous", "padded", "transposed", "broadcast"]
    def strides(kind):
        if kind == "contiguous":
            return contiguous(sizes)
        if kind == "padded":
            return contiguous(sizes, pad=rng.randint(1, 3))
        if kind == "transposed":
            return list(reversed(contiguous(list(reversed(sizes)))))
        st = contiguous(sizes)
        st[rng.randrange(rank)] = 0        # a broadcast source dimension
        return st
    sk = rng.choice(kinds)
    dk = rng.choice(kinds[:3])             # destinations are never broadcast
    cases.append((elem, sizes, rng.randint(0, 3), strides(sk), rng.randint(0, 3), strides(dk)))
bad = 0
for elem, sizes, soff, ss, doff, ds in cases:
    args = [probe, "copy", str(elem), str(len(sizes))] + [str(s) for s in sizes] + \
        [str(soff)] + [str(s) for s in ss] + [str(doff)] + [str(s) for s in ds]
    got = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    want = model_copy(elem, sizes, soff, ss, doff, ds)
    if got != want:
        bad += 1
        print("memrefCopy mismatch: elem %d sizes %s src %d %s dst %d %s" % (
            elem, sizes, soff, ss, doff, ds))
print("memrefCopy: %d cases, %d mismatches" % (len(cases), bad))
failures += bad
print("all passed" if failures == 0 else "FAILED")
sys.exit(1 if failures else 0)
