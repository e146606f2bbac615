"""MLIR text pieces shared by the test generators, and the reading of what
mlir-runner printed.

Part of the attnres project. Used by block_ref.py,
utils/property/attnres_property.py and utils/property/robustness.py, which
write modules whose @main prints one result with printMemrefF32. Plain
Python and numpy: nothing here comes from the compiler.
"""

import re

import numpy as np

# Bit patterns of NaN, +Inf and -Inf: MLIR's float literals cannot spell them.
NONFINITE_HEX = {"f32": ("0x7FC00000", "0x7F800000", "0xFF800000"),
                 "f16": ("0x7E00", "0x7C00", "0xFC00"),
                 "bf16": ("0x7FC0", "0x7F80", "0xFF80")}


def tensor_type(shape, elt):
    return "tensor<%sx%s>" % ("x".join(map(str, shape)), elt)


def number(x, dtype):
    """One element of a dense literal: %.9e, or the bit pattern of NaN/Inf."""
    if np.isnan(x):
        return NONFINITE_HEX[dtype][0]
    if np.isinf(x):
        return NONFINITE_HEX[dtype][1] if x > 0 else NONFINITE_HEX[dtype][2]
    return "%.9e" % float(x)


def nested(a, dtype):
    """The nested-bracket body of a dense literal of the array `a`."""
    if a.ndim == 1:
        return "[" + ", ".join(number(x, dtype) for x in a) + "]"
    return "[" + ", ".join(nested(x, dtype) for x in a) + "]"


def dense(a, dtype):
    """`dense<...> : tensor<...>` holding the array `a` in element type
    `dtype` (the values must be representable in it)."""
    a = np.asarray(a)
    return "dense<%s> : %s" % (nested(a, dtype), tensor_type(a.shape, dtype))


def generic(ins, outs, maps, iters, args, body, result):
    """One linalg.generic: `ins` is [(value, type)], `outs` and `result` are
    (value, type), `maps` are affine_map bodies, `args` the block arguments
    and `body` the lines of the region."""
    return ("  %s = linalg.generic {indexing_maps = [%s], iterator_types = [%s]} "
            "ins(%s : %s) outs(%s : %s) {\n  ^bb0(%s):\n%s\n  } -> %s" % (
                result[0], ", ".join("affine_map<%s>" % m for m in maps),
                ", ".join('"%s"' % i for i in iters),
                ", ".join(v for v, _ in ins), ", ".join(t for _, t in ins),
                outs[0], outs[1], args,
                "\n".join("    " + line for line in body), result[1]))


def print_and_return(value, shape, dtype):
    """The last lines of @main: print the tensor `value` of `shape` x `dtype`
    with printMemrefF32 (widened to f32 first unless it is f32), return."""
    ty = tensor_type(shape, dtype)
    lines = []
    if dtype != "f32":
        ty32 = tensor_type(shape, "f32")
        dims = ", ".join("d%d" % i for i in range(len(shape)))
        ident = "(%s) -> (%s)" % (dims, dims)
        lines.append("  %%print_init = tensor.empty() : %s" % ty32)
        lines.append(generic([(value, ty)], ("%print_init", ty32),
                             [ident, ident], ["parallel"] * len(shape),
                             "%%a: %s, %%o: f32" % dtype,
                             ["%%x = arith.extf %%a : %s to f32" % dtype,
                              "linalg.yield %x : f32"],
                             ("%print_f32", ty32)))
        value, ty = "%print_f32", ty32
    lines.append("  %%u = tensor.cast %s : %s to tensor<*xf32>" % (value, ty))
    lines.append("  func.call @printMemrefF32(%u) : (tensor<*xf32>) -> ()")
    lines.append("  return")
    lines.append("}")
    return lines


def printed_values(text):
    """The numbers printMemrefF32 printed (after its `data =`), as float64,
    nan and +-inf included; None when `text` holds no printed memref."""
    idx = text.find("data =")
    if idx < 0:
        return None
    nums = re.findall(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)",
                      text[idx + 6:])
    return np.array([float(x) for x in nums], dtype=np.float64)
