"""A CPU emulator of the GPU kernels that convert-attnres-to-gpu emits.

The GPU kernels are checked for numerics on a GPU (bench/kernels_check), and
CI has none. This module runs a kernel's ``gpu.func`` (the IR that
convert-attnres-to-gpu produces, before the NVVM pipeline) on the CPU, so that
tests can check a kernel's indexing, its tensor-core fragments and its
numerics against a float64 reference without a GPU.

It is a SIMT interpreter: every SSA value holds one element (or one vector)
per thread of a CTA, as a numpy array with the threads first, and every op
runs for all threads at once under an active mask. ``scf.if`` runs both
regions under complementary masks, ``scf.for`` with per-thread bounds runs
until no active thread has iterations left, ``gpu.barrier`` must be reached
by every thread (lockstep makes it a check, not a wait), and
``nvvm.mma.sync`` gathers the fragments of the 32 lanes of each warp into
the matrices of the PTX ISA's m16n8k16 layout (which must then be
converged). Global and workgroup memory are numpy arrays; an out-of-bounds
access by an active thread is an error (as compute-sanitizer's memcheck
would report it); workgroup memory starts as NaN, so a read before a write
shows in the results.

Numerics: f32 arithmetic in float32 (fma through float64, which is exact
for the product), mma products exact and their sums in float64 rounded to
float32 (the tensor cores' order and rounding differ in the last bits), the
approximate ex2 as numpy's exp2. bf16 and f16 values are held as their bit
patterns (uint16); truncation to bf16 rounds to nearest even.

Supported: the ops of the tensor-core block_score_grad and block_score (L2
path, without bulk copies or clusters) kernels and query_gain_split; any
other op raises EmulatorError. Usage::

    kernels = compile_kernels(ir, "split-query-gains=1")  # or parse_kernels(generic text)
    run_kernel(kernels["name"], args, grid)     # args: numpy arrays / ints / floats
"""

import re

import numpy as np

__all__ = ["EmulatorError", "Function", "Kernel", "compile_kernels", "compile_module", "parse_functions",
           "parse_kernels", "run_function", "run_kernel", "to_bf16", "from_bf16"]


class EmulatorError(Exception):
    pass


# ---------------------------------------------------------------------------
# bf16 / f16 bit patterns
# ---------------------------------------------------------------------------

def to_bf16(x):
    """float32 values -> bf16 bit patterns (uint16), round to nearest even."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float32))
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1)))
               >> np.uint64(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded = np.where(nan, np.uint16(0x7FC0), rounded)
    return rounded


def from_bf16(bits):
    """bf16 bit patterns (uint16) -> float32."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _to_f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def _from_f16(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float32)


# ---------------------------------------------------------------------------
# Parsing the generic form
# ---------------------------------------------------------------------------

_OPEN = "<([{"
_CLOSE = ">)]}"


def _split_top(s, sep=","):
    """Splits `s` at `sep` outside brackets (<> () [] {})."""
    out, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "-" and s[i:i + 2] == "->":
            cur.append("->")
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        if c == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _result_types(sig):
    """The result types of a trailing ` : (operands) -> results` (after the
    last top-level "->")."""
    depth, pos = 0, -1
    for j, c in enumerate(sig):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE and not (c == ">" and j > 0 and sig[j - 1] == "-"):
            depth -= 1
        elif c == "-" and sig[j:j + 2] == "->" and depth == 0:
            pos = j
    if pos < 0:
        return []
    res = sig[pos + 2:].strip()
    if res.startswith("(") and res.endswith(")"):
        inner = res[1:-1].strip()
        return _split_top(inner) if inner else []
    return [res]


class Op:
    __slots__ = ("name", "results", "operands", "props", "regions", "types", "line")

    def __init__(self, name, results, operands, props, regions, types, line):
        self.name, self.results, self.operands = name, results, operands
        self.props, self.regions, self.types, self.line = props, regions, types, line


class Region:
    __slots__ = ("args", "arg_types", "ops")

    def __init__(self):
        self.args, self.arg_types, self.ops = [], [], []


_OP_RE = re.compile(r'^(?:(%[\w.$-]+)(?::(\d+))? = )?"([\w.]+)"\(([^)]*)\)(.*)$')
_BLOCK_RE = re.compile(r"^\^bb\d+(?:\((.*)\))?:$")


def _parse_region(lines, i):
    """Parses one region's ops from lines[i] until `}` / `}, {` / `})`."""
    region = Region()
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("}"):
            return region, i
        m = _BLOCK_RE.match(line)
        if m:
            if region.ops:
                raise EmulatorError("blocks beyond the entry block are not supported: " + line)
            for a in _split_top(m.group(1) or ""):
                name, ty = a.split(":", 1)
                region.args.append(name.strip())
                region.arg_types.append(ty.strip())
            i += 1
            continue
        op, i = _parse_op(lines, i)
        region.ops.append(op)
    raise EmulatorError("unterminated region")


def _parse_op(lines, i):
    line = lines[i].strip()
    m = _OP_RE.match(line)
    if not m:
        raise EmulatorError("cannot parse: " + line[:200])
    res, nres, name, operands, rest = m.groups()
    results = []
    if res:
        results = [res] if not nres else ["%s#%d" % (res, k) for k in range(int(nres))]
    ops = [o.strip() for o in operands.split(",") if o.strip()]
    props = ""
    rest = rest.strip()
    if rest.startswith("<{"):
        depth = 0
        for j, c in enumerate(rest):
            if c in "<{":
                depth += 1
            elif c in ">}" and not (c == ">" and rest[j - 1] == "-"):
                depth -= 1
                if depth == 0:
                    props = rest[2:j - 1]
                    rest = rest[j + 1:].strip()
                    break
    regions = []
    if rest.startswith("({"):
        i += 1
        while True:
            region, i = _parse_region(lines, i)
            regions.append(region)
            close = lines[i].strip()
            if close.startswith("}, {"):
                i += 1
                continue
            if close.startswith("})"):
                rest = close[2:].strip()
                break
            raise EmulatorError("unexpected region end: " + close[:200])
    sig = rest
    # attributes in { } before the signature
    if sig.startswith("{"):
        depth = 0
        for j, c in enumerate(sig):
            if c in "{[<(":
                depth += 1
            elif c in "}]>)" and not (c == ">" and sig[j - 1] == "-"):
                depth -= 1
                if depth == 0:
                    props += ", " + sig[1:j]
                    sig = sig[j + 1:].strip()
                    break
    types = _result_types(sig[1:].strip() if sig.startswith(":") else sig)
    return Op(name, results, ops, props, regions, types, line[:160]), i + 1


class Kernel:
    """A gpu.func: its arguments (then its workgroup attributions), body,
    block size, cluster size (known_cluster_size, else 1) and whether it uses
    dynamic shared memory."""

    def __init__(self, name, region, num_args, block, cluster=1):
        self.name, self.region, self.num_args, self.block = name, region, num_args, block
        self.cluster = cluster
        self.dynamic_shared = any(op.name == "gpu.dynamic_shared_memory" for op in region.ops)


class Function:
    """A host func.func after convert-attnres-to-gpu (tensors in and out,
    buffers and kernel launches inside)."""

    def __init__(self, name, region, result_types):
        self.name, self.region, self.result_types = name, region, result_types


def _ops_named(text, opname):
    """The ops `opname` (printed generic, one per line start) of a module."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().startswith('"%s"' % opname):
            op, i = _parse_op(lines, i)
            yield op
            continue
        i += 1


def parse_functions(text):
    """The func.func functions (with a body) of a module printed in generic
    form, by name."""
    funcs = {}
    for op in _ops_named(text, "func.func"):
        name = re.search(r'sym_name = "(\w+)"', op.props).group(1)
        ft = re.search(r"function_type = \((.*?)\) -> (.*?)(?:, \w+ = |$)", op.props)
        res = ft.group(2).strip()
        res = _split_top(res[1:-1]) if res.startswith("(") else [res]
        if op.regions and op.regions[0].ops:
            funcs[name] = Function(name, op.regions[0], res)
    return funcs


def parse_kernels(text):
    """The gpu.func kernels of a module printed in generic form, by name."""
    kernels = {}
    for op in _ops_named(text, "gpu.func"):
        name = re.search(r'sym_name = "(\w+)"', op.props).group(1)
        ft = re.search(r"function_type = \((.*?)\) -> \(\)", op.props).group(1)
        block = int(re.search(r"known_block_size = array<i32: (\d+)", op.props).group(1))
        cl = re.search(r"known_cluster_size = array<i32: (\d+)", op.props)
        kernels[name] = Kernel(name, op.regions[0], len(_split_top(ft)), block, int(cl.group(1)) if cl else 1)
    return kernels


def compile_module(ir, options=""):
    """convert-attnres-to-gpu (with `options`) on `ir` in this process: the
    host functions (parse_functions) and the kernels (parse_kernels)."""
    from attnres import compiler

    pipeline = "convert-attnres-to-gpu" + ("{%s}" % options if options else "")
    text = compiler.compile(ir, pipeline, generic=True)
    return parse_functions(text), parse_kernels(text)


def run_function(module, name, args):
    """Runs host function `name` of `module` (compile_module's pair) on the
    CPU, its kernel launches through run_kernel: `args` numpy arrays for
    tensors (bf16 / f16 as uint16 bit patterns), scalars otherwise; returns
    its results as numpy arrays. Buffers it allocates start as NaN."""
    funcs, kernels = module
    fn = funcs[name]
    st = _State(1, 1, 0, 1, _Registry())
    _record_types(fn.region, st.types)
    st.kernels = kernels
    vals = []
    for a, ty in zip(args, fn.region.arg_types):
        if ty.startswith(("tensor", "memref")):
            vals.append(_Memref(np.ascontiguousarray(a), _memref_shape("memref" + ty[ty.index("<"):])[1]))
        elif ty == "index":
            vals.append(np.full((1,), int(a), dtype=np.int64))
        else:
            vals.append(np.full((1,), a, dtype=_elem_dtype(ty)))
    res = _run_region(fn.region, st, np.ones(1, dtype=bool), vals)
    return [r.array if isinstance(r, _Memref) else r[0] for r in res]


def _alloc_array(ty, dyn):
    shape, ety = _memref_shape(ty)
    it = iter(int(x[0]) for x in dyn)
    shape = [next(it) if s < 0 else s for s in shape]
    if ety == "f32":
        return np.full(shape, np.nan, dtype=np.float32)
    if ety in ("bf16", "f16"):
        return np.full(shape, 0x7FC0 if ety == "bf16" else 0x7E00, dtype=np.uint16)
    return np.zeros(shape, dtype=_elem_dtype(ety))


def _launch(op, st, args):
    seg = _attr_array(op.props, "operandSegmentSizes")
    if seg[0] or (len(seg) > 12 and seg[12]):
        raise EmulatorError("asynchronous launches are not emulated")
    name = re.search(r"kernel = @\w+::@(\w+)", op.props).group(1)
    kernel = st.kernels[name]
    pos = seg[0]
    grid = int(args[pos][0])
    block = int(args[pos + 3][0])
    if int(args[pos + 1][0]) != 1 or int(args[pos + 2][0]) != 1 or block != kernel.block:
        raise EmulatorError("launch of %s: grid y/z or block size differ from the kernel's" % name)
    pos = sum(seg[0:7])
    cluster = None
    if sum(seg[7:10]):
        cluster = int(args[pos][0])
        pos += sum(seg[7:10])
    smem = None
    if seg[10]:
        smem = int(args[pos][0])
        pos += 1
    kargs = []
    for a in args[pos:pos + seg[11]]:
        if isinstance(a, _Memref):
            kargs.append(a.array)
        elif a.dtype == np.float32:
            kargs.append(np.float32(a[0]))
        else:
            kargs.append(int(a[0]))
    run_kernel(kernel, kargs, grid, dynamic_shared_bytes=smem if smem is not None else 0, cluster=cluster)


def compile_kernels(ir, options=""):
    """Runs convert-attnres-to-gpu (with `options`, "name=value" pairs
    separated by spaces) on the module `ir` in this process and returns its
    kernels (parse_kernels)."""
    from attnres import compiler

    pipeline = "convert-attnres-to-gpu" + ("{%s}" % options if options else "")
    return parse_kernels(compiler.compile(ir, pipeline, generic=True))


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

def _elem_dtype(t):
    t = t.strip()
    return {"f32": np.float32, "f64": np.float64, "bf16": np.uint16, "f16": np.uint16,
            "i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
            "index": np.int64}[t]


def _vec(t):
    """(shape, element type) of a vector type, or None."""
    m = re.match(r"vector<([\dx]+)x(\w+)>$", t.strip())
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split("x")), m.group(2)


def _scalar_or_vec(t):
    v = _vec(t)
    if v:
        return v[1], v[0]
    return t.strip(), ()


def _memref_shape(t):
    """(shape with -1 for ?, element type) of a memref type."""
    t = t.strip()
    if not (t.startswith("memref<") and t.endswith(">")):
        raise EmulatorError("not a memref type: " + t)
    parts = _split_top(t[len("memref<"):-1])[0].split("x")
    return [(-1 if d == "?" else int(d)) for d in parts[:-1]], parts[-1]


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

_CMP = {0: np.equal, 1: np.not_equal, 2: np.less, 3: np.less_equal, 4: np.greater,
        5: np.greater_equal, 6: np.less, 7: np.less_equal, 8: np.greater, 9: np.greater_equal}


def _attr_int(props, key):
    return int(re.search(key + r" = (-?\d+)", props).group(1))


def _attr_array(props, key):
    m = re.search(key + r" = array<i\d+(?:: ([^>]*))?>", props)
    if not m or not m.group(1):
        return []
    return [int(x) for x in m.group(1).split(",")]


def _parse_number(text, ety):
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("0x"):
        bits = int(text, 16)
        if ety == "f32":
            return np.array([bits], dtype=np.uint32).view(np.float32)[0]
        if ety in ("bf16", "f16"):
            return ("bits", bits)
        return bits
    return float(text) if ety in ("f32", "f64", "bf16", "f16") else int(text)


class _State:
    """One SIMT group: a CTA, or the CTAs of a thread-block cluster run
    together (thread t belongs to CTA cta_of[t] of the cluster)."""

    def __init__(self, nt, block, first_cta, grid, registry):
        self.nt, self.block, self.grid = nt, block, grid
        self.cta_of = np.arange(nt, dtype=np.int64) // block
        self.first_cta = first_cta
        self.env = {}
        self.registry = registry
        self.types = {}
        self.shared = []  # per CTA of the group: its dynamic shared memory
        self.shared_trackers = []  # and their race trackers
        self.trackers = []  # every race tracker of the group
        self.race_check = False


class _Registry:
    """Addresses of the emulated memory. Kernels compute addresses from
    memref.extract_aligned_pointer_as_index (bulk copies, mbarriers, mapa):
    every buffer gets a fake base address (global ones above 2^36, shared
    ones below 2^31, as the kernels keep 32-bit shared addresses), and an
    address maps back to a buffer and a byte offset."""

    def __init__(self):
        self.entries = []  # (fake base, real start, nbytes, uint8 view)

    def add(self, array, fake_base):
        flat = array.reshape(-1).view(np.uint8)
        real = array.__array_interface__["data"][0]
        self.entries.append((fake_base, real, flat.size, flat))

    def fake_address(self, array):
        real = array.__array_interface__["data"][0]
        for fake, start, nbytes, _ in self.entries:
            if start <= real < start + max(nbytes, 1):
                return fake + (real - start)
        raise EmulatorError("a memref outside the emulated memory")

    def lookup(self, addr, nbytes, what):
        for fake, _, size, flat in self.entries:
            if fake <= addr and addr + nbytes <= fake + size:
                return flat, addr - fake, fake
        raise EmulatorError("%s of %d bytes at address 0x%x is outside every buffer" % (what, nbytes, addr))


class _Memref:
    """A memref value: the array it views (global or per-CTA workgroup).
    Workgroup memory carries its race tracker (`tracker`, the byte offset
    of this view in the tracked buffer)."""

    def __init__(self, array, ety, tracker=None, offset=0):
        self.array, self.ety = array, ety
        self.tracker, self.offset = tracker, offset


class _RaceTracker:
    """Hazards between the warps of a CTA on one workgroup buffer, as
    compute-sanitizer's racecheck reports them: between two barriers, a byte
    written by one warp and read or written by another. Per byte: the warp
    that wrote it (-1: none) and the warps that read it (a bit each)."""

    def __init__(self, nbytes):
        self.writer = np.full(nbytes, -1, dtype=np.int32)
        self.readers = np.zeros(nbytes, dtype=np.uint64)

    def reset(self):
        self.writer[:] = -1
        self.readers[:] = 0

    def access(self, byte_starts, itemsize, warps, write, op):
        """`byte_starts` [threads, k]: the accesses' first bytes; `warps`
        [threads]: each thread's warp."""
        if byte_starts.size == 0:
            return
        b = (byte_starts[..., None] + np.arange(itemsize)).reshape(len(warps), -1)
        w = np.broadcast_to(warps[:, None], b.shape).reshape(-1)
        b = b.reshape(-1)
        wr = self.writer[b]
        other_writer = (wr >= 0) & (wr != w)
        if write:
            mine = np.left_shift(np.uint64(1), w.astype(np.uint64))
            other_reader = (self.readers[b] & ~mine) != 0
            bad = other_writer | other_reader
        else:
            bad = other_writer
        if bad.any():
            k = int(np.argmax(bad))
            raise EmulatorError("race: warp %d %s byte %d of a workgroup buffer that warp %d %s "
                                "since the last barrier, at %s"
                                % (int(w[k]), "writes" if write else "reads", int(b[k]),
                                   int(wr[k]) if wr[k] >= 0 else -1,
                                   "wrote" if wr[k] >= 0 else "read", op.line))
        if write:
            self.writer[b] = w
        else:
            np.bitwise_or.at(self.readers, b, np.left_shift(np.uint64(1), w.astype(np.uint64)))


def _track(mem, st, m, flat, write, op):
    """Race bookkeeping of an access of `mem` by the threads in `m` at flat
    element indices `flat` [threads, k] (workgroup memory only)."""
    if mem.tracker is None or not st.race_check:
        return
    act = np.nonzero(m)[0]
    itemsize = mem.array.itemsize
    starts = mem.offset + flat[act] * itemsize
    warps = (act % st.block) // 32
    mem.tracker.access(starts, itemsize, warps, write, op)


class _MemrefSet:
    """A memref chosen per thread (arith.select of memrefs): thread t uses
    choices[which[t]]."""

    def __init__(self, choices, which):
        self.choices, self.which = choices, which


def _as_set(m, nt):
    if isinstance(m, _MemrefSet):
        return m
    return _MemrefSet([m], np.zeros(nt, dtype=np.int64))


def _select_memref(cond, a, b, nt):
    a, b = _as_set(a, nt), _as_set(b, nt)
    choices = list(a.choices)
    remap = []
    for c in b.choices:
        for k, x in enumerate(choices):
            if x is c:
                remap.append(k)
                break
        else:
            choices.append(c)
            remap.append(len(choices) - 1)
    which = np.where(cond, a.which, np.asarray(remap, dtype=np.int64)[b.which])
    return _MemrefSet(choices, which)


def _per_memref(m, mask, fn):
    """Runs fn(memref, submask) for each memref that active threads use;
    returns the per-thread merge of the results (None when fn returns None)."""
    if isinstance(m, _Memref):
        return fn(m, mask)
    out = None
    for k, c in enumerate(m.choices):
        sub = mask & (m.which == k)
        if not sub.any():
            continue
        r = fn(c, sub)
        if r is not None:
            out = r if out is None else _sel(sub, r, out)
    return out


def _full(nt, value, shape=(), dtype=np.float32):
    return np.full((nt,) + tuple(shape), value, dtype=dtype)


def _const(op, st):
    t = op.types[0]
    ety, shape = _scalar_or_vec(t)
    dense = re.search(r"value = dense<(.*)> : vector", op.props)
    if dense:
        text = dense.group(1)
        if text.startswith("["):
            vals = [_parse_number(x, ety) for x in text.strip("[]").split(",")]
        else:
            vals = [_parse_number(text, ety)] * int(np.prod(shape))
    else:
        sval = re.search(r"value = ([^ ,]+)", op.props).group(1)
        vals = [_parse_number(sval, ety)]

    def conv(v):
        if isinstance(v, tuple):
            return v[1]
        if ety == "bf16":
            return int(to_bf16(np.float32(v))[0])
        if ety == "f16":
            return int(np.atleast_1d(_to_f16(np.float32(v)))[0])
        return v
    arr = np.array([conv(v) for v in vals], dtype=_elem_dtype(ety))
    if shape:
        return np.broadcast_to(arr.reshape(shape), (st.nt,) + shape).copy()
    return np.full((st.nt,), arr[0], dtype=arr.dtype)


def _to_f32(x, ety):
    if ety == "bf16":
        return from_bf16(x)
    if ety == "f16":
        return _from_f16(x)
    return x.astype(np.float32)


def _from_f32(x, ety):
    if ety == "bf16":
        return to_bf16(x)
    if ety == "f16":
        return _to_f16(x)
    return x.astype(_elem_dtype(ety))


def _check_bounds(idx, shape, mask, op):
    for k, (ix, n) in enumerate(zip(idx, shape)):
        bad = mask & ((ix < 0) | (ix >= n))
        if bad.any():
            t = int(np.argmax(bad))
            raise EmulatorError("out-of-bounds access by thread %d: index %d of dim %d (size %d) at %s"
                                % (t, int(ix[t]), k, n, op.line))


def _run_region(region, st, mask, args=()):
    env = st.env
    for name, v in zip(region.args, args):
        env[name] = v
    for op in region.ops:
        if op.name in ("scf.yield", "scf.condition", "gpu.return", "func.return"):
            return [env[o] for o in op.operands]
        _run_op(op, st, mask)
    return []


def _sel(cond, a, b):
    c = cond
    while c.ndim < a.ndim:
        c = c[..., None]
    return np.where(c, a, b)


def _run_op(op, st, mask):
    env, nt = st.env, st.nt
    name = op.name
    args = [env[o] for o in op.operands]
    out = None
    ety_out = _scalar_or_vec(op.types[0])[0] if op.types else None

    if name == "arith.constant":
        out = _const(op, st)
    elif name in ("arith.addi", "arith.subi", "arith.muli", "arith.divui", "arith.remui",
                  "arith.ceildivui", "arith.minui", "arith.maxui", "arith.andi", "arith.ori",
                  "arith.xori", "arith.shli", "arith.shrui", "arith.divsi", "arith.remsi",
                  "arith.minsi", "arith.maxsi"):
        a, b = args
        with np.errstate(all="ignore"):
            if name == "arith.addi":
                out = a + b
            elif name == "arith.subi":
                out = a - b
            elif name == "arith.muli":
                out = a * b
            elif name in ("arith.divui", "arith.divsi", "arith.remui", "arith.remsi", "arith.ceildivui"):
                bz = np.where(b == 0, 1, b)
                if (mask & (b == 0)).any() if b.ndim == 1 else False:
                    raise EmulatorError("division by zero at " + op.line)
                out = {"arith.divui": a // bz, "arith.divsi": a // bz, "arith.remui": a % bz,
                       "arith.remsi": a % bz, "arith.ceildivui": -(-a // bz)}[name]
            elif name in ("arith.minui", "arith.minsi"):
                out = np.minimum(a, b)
            elif name in ("arith.maxui", "arith.maxsi"):
                out = np.maximum(a, b)
            elif name == "arith.andi":
                out = a & b
            elif name == "arith.ori":
                out = a | b
            elif name == "arith.xori":
                out = a ^ b
            elif name == "arith.shli":
                out = a << b
            else:
                out = (a.astype(np.uint64) >> b.astype(np.uint64)).astype(a.dtype)
        out = out.astype(a.dtype)
    elif name == "arith.cmpi":
        out = _CMP[_attr_int(op.props, "predicate")](args[0], args[1])
    elif name == "arith.cmpf":
        pred = _attr_int(op.props, "predicate")
        fn = {1: np.equal, 2: np.greater, 3: np.greater_equal, 4: np.less, 5: np.less_equal,
              6: np.not_equal, 8: np.equal, 9: np.greater, 10: np.greater_equal, 11: np.less,
              12: np.less_equal, 13: np.not_equal}.get(pred)
        if fn is None:
            raise EmulatorError("cmpf predicate %d" % pred)
        out = fn(args[0], args[1])
    elif name == "arith.select":
        if isinstance(args[1], (_Memref, _MemrefSet)):
            out = _select_memref(args[0], args[1], args[2], nt)
        else:
            out = _sel(args[0], args[1], args[2])
    elif name in ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf",
                  "arith.maxnumf", "arith.minimumf", "arith.minnumf"):
        a, b = args
        with np.errstate(all="ignore"):
            out = {"arith.addf": np.add, "arith.subf": np.subtract, "arith.mulf": np.multiply,
                   "arith.divf": np.divide, "arith.maximumf": np.maximum, "arith.maxnumf": np.fmax,
                   "arith.minimumf": np.minimum, "arith.minnumf": np.fmin}[name](a, b)
        out = out.astype(np.float32)
    elif name == "arith.negf":
        out = (-args[0]).astype(np.float32)
    elif name == "vector.fma" or name == "math.fma":
        a, b, c = (x.astype(np.float64) for x in args)
        out = (a * b + c).astype(np.float32)
    elif name == "arith.extf":
        src = _scalar_or_vec(_type_of(op, st, 0))[0]
        out = _to_f32(args[0], src)
    elif name == "arith.truncf":
        out = _from_f32(args[0].astype(np.float32), ety_out)
    elif name in ("arith.index_cast", "arith.index_castui", "arith.extui", "arith.extsi", "arith.trunci"):
        out = args[0].astype(_elem_dtype(ety_out))
    elif name == "arith.bitcast" or name == "vector.bitcast":
        ety, shape = _scalar_or_vec(op.types[0])
        dt = np.uint16 if ety in ("bf16", "f16") else _elem_dtype(ety)
        src = np.ascontiguousarray(args[0])
        if src.dtype == np.bool_:
            raise EmulatorError("bitcast of i1")
        out = src.view(dt).reshape((nt,) + tuple(shape))
    elif name == "vector.broadcast":
        shape, ety = _vec(op.types[0])
        out = np.broadcast_to(args[0].reshape((nt,) + (1,) * len(shape)), (nt,) + shape).copy()
    elif name == "vector.extract":
        pos = _attr_array(op.props, "static_position")
        if len(args) > 1:
            raise EmulatorError("dynamic vector.extract")
        out = args[0][(slice(None),) + tuple(pos)]
    elif name == "vector.insert":
        pos = _attr_array(op.props, "static_position")
        out = args[1].copy()
        out[(slice(None),) + tuple(pos)] = args[0]
    elif name == "vector.shuffle":
        idx = _attr_array(op.props, "mask")
        both = np.concatenate([args[0], args[1]], axis=1)
        out = both[:, idx]
    elif name == "vector.reduction":
        kind = re.search(r"vector.kind<(\w+)>", op.props).group(1)
        v = args[0]
        if kind in ("add", "mul"):
            # In order (no reassoc), as LLVM's ordered reduction.
            acc = args[1].astype(np.float32) if len(args) > 1 else None
            for k in range(v.shape[1]):
                x = v[:, k].astype(np.float32)
                acc = x if acc is None else ((acc + x) if kind == "add" else (acc * x)).astype(np.float32)
            out = acc
        elif kind in ("maxnumf", "maximumf", "maxf"):
            out = np.max(v, axis=1).astype(v.dtype)
        elif kind in ("minnumf", "minimumf", "minf"):
            out = np.min(v, axis=1).astype(v.dtype)
        else:
            raise EmulatorError("vector.reduction " + kind)
    elif name == "vector.from_elements":
        out = np.stack(args, axis=1)
    elif name == "vector.load":
        shape, ety = _vec(op.types[0])
        idx = [a.astype(np.int64) for a in args[1:]]
        k = shape[-1]

        def vload(mem, m):
            arr = mem.array
            _check_bounds(idx[:-1], arr.shape[:-1], m, op)
            _check_bounds([idx[-1], idx[-1] + k - 1], [arr.shape[-1]] * 2, m, op)
            safe = [np.where(m, ix, 0) for ix in idx[:-1]]
            last = np.where(m[:, None], idx[-1][:, None] + np.arange(k)[None, :], 0)
            if mem.tracker is not None:
                _track(mem, st, m, np.ravel_multi_index(tuple(x[:, None] for x in safe) + (last,),
                                                        arr.shape), False, op)
            return arr[tuple(x[:, None] for x in safe) + (last,)]
        out = _per_memref(args[0], mask, vload)
        if out is None:
            out = np.zeros((nt,) + shape, dtype=np.uint16 if ety in ("bf16", "f16") else _elem_dtype(ety))
    elif name == "vector.store":
        val = args[0]
        idx = [a.astype(np.int64) for a in args[2:]]
        k = val.shape[-1]

        def vstore(mem, m):
            arr = mem.array
            _check_bounds(idx[:-1], arr.shape[:-1], m, op)
            _check_bounds([idx[-1], idx[-1] + k - 1], [arr.shape[-1]] * 2, m, op)
            if mem.tracker is not None:
                safe = tuple(np.where(m, ix, 0)[:, None] for ix in idx[:-1])
                last = np.where(m[:, None], idx[-1][:, None] + np.arange(k)[None, :], 0)
                _track(mem, st, m, np.ravel_multi_index(safe + (last,), arr.shape), True, op)
            act = np.nonzero(m)[0]
            lead = tuple(ix[act][:, None] for ix in idx[:-1])
            arr[lead + (idx[-1][act][:, None] + np.arange(k)[None, :],)] = val[act]
        _per_memref(args[1], mask, vstore)
    elif name == "memref.load":
        idx = [a.astype(np.int64) for a in args[1:]]
        ety = _scalar_or_vec(op.types[0])[0]

        def sload(mem, m):
            _check_bounds(idx, mem.array.shape, m, op)
            safe = tuple(np.where(m, ix, 0) for ix in idx)
            if mem.tracker is not None and idx:
                _track(mem, st, m, np.ravel_multi_index(safe, mem.array.shape)[:, None], False, op)
            return mem.array[safe] if idx else np.full((nt,), mem.array[()])
        out = _per_memref(args[0], mask, sload)
        if out is None:
            out = np.zeros((nt,), dtype=np.uint16 if ety in ("bf16", "f16") else _elem_dtype(ety))
    elif name == "memref.store":
        val = args[0]
        idx = [a.astype(np.int64) for a in args[2:]]

        def sstore(mem, m):
            _check_bounds(idx, mem.array.shape, m, op)
            if mem.tracker is not None and idx:
                safe = tuple(np.where(m, ix, 0) for ix in idx)
                _track(mem, st, m, np.ravel_multi_index(safe, mem.array.shape)[:, None], True, op)
            act = np.nonzero(m)[0]
            mem.array[tuple(ix[act] for ix in idx)] = val[act]
        _per_memref(args[1], mask, sstore)
    elif name == "gpu.thread_id":
        out = np.arange(nt, dtype=np.int64) % st.block
    elif name == "gpu.block_id":
        out = st.first_cta + st.cta_of
    elif name == "gpu.grid_dim":
        out = np.full((nt,), st.grid, dtype=np.int64)
    elif name == "gpu.block_dim":
        out = np.full((nt,), st.block, dtype=np.int64)
    elif name == "gpu.dynamic_shared_memory":
        if not st.shared:
            raise EmulatorError("the kernel uses dynamic shared memory: give run_kernel its size")
        out = _group_memref([_Memref(a, "i8", t) for a, t in zip(st.shared, st.shared_trackers)], st)
    elif name == "memref.view":
        shape, ety = _memref_shape(op.types[0])
        dt = np.float32 if ety == "f32" else (np.uint16 if ety in ("bf16", "f16") else _elem_dtype(ety))
        shift = args[1]
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize

        def view(mem, cta):
            off = int(shift[cta * st.block])
            if off < 0 or off + nbytes > mem.array.size:
                raise EmulatorError("memref.view beyond the dynamic shared memory at " + op.line)
            return _Memref(mem.array[off:off + nbytes].view(dt).reshape(shape), ety,
                           mem.tracker, mem.offset + off)
        src = args[0]
        if isinstance(src, _MemrefSet):
            out = _MemrefSet([view(c, k) for k, c in enumerate(src.choices)], src.which)
        else:
            out = view(src, 0)
    elif name == "memref.extract_aligned_pointer_as_index":
        m = args[0]
        if isinstance(m, _MemrefSet):
            addrs = np.array([st.registry.fake_address(c.array) for c in m.choices], dtype=np.int64)
            out = addrs[m.which]
        else:
            out = np.full((nt,), st.registry.fake_address(m.array), dtype=np.int64)
    elif name in ("nvvm.mbarrier.init", "nvvm.fence.mbarrier.init", "nvvm.mbarrier.arrive.expect_tx"):
        out = None  # bulk copies complete when issued
    elif name == "nvvm.mbarrier.try_wait":
        out = np.ones((nt,), dtype=bool)
    elif name == "nvvm.cp.async.bulk.shared.cluster.global":
        dst, src, size = args[0], args[1], args[3]
        for t in np.nonzero(mask)[0]:
            n = int(size[t])
            dflat, doff, _ = st.registry.lookup(int(dst[t]), n, "bulk copy destination")
            sflat, soff, _ = st.registry.lookup(int(src[t]), n, "bulk copy source")
            dflat[doff:doff + n] = sflat[soff:soff + n]
    elif name in ("nvvm.cluster.arrive", "nvvm.cluster.wait", "nvvm.cluster.arrive.relaxed"):
        if not mask.all():
            raise EmulatorError("%s reached by %d of %d threads" % (name, int(mask.sum()), nt))
        if name == "nvvm.cluster.wait":
            for t in st.trackers:
                t.reset()
    elif name == "nvvm.mapa":
        addr, rank = args[0], args[1]
        out = np.zeros((nt,), dtype=np.int64)
        for t in np.nonzero(mask)[0]:
            _, off, fake = st.registry.lookup(int(addr[t]), 1, "mapa address")
            bases = [st.registry.fake_address(a) for a in st.shared]
            if fake not in bases or not 0 <= int(rank[t]) < len(bases):
                raise EmulatorError("mapa of an address outside the cluster's shared memory")
            out[t] = bases[int(rank[t])] + off
    elif name == "llvm.load":
        ety = op.types[0].strip()
        dt = {"f32": np.float32, "i32": np.int32, "i64": np.int64}[ety]
        size = np.dtype(dt).itemsize
        out = np.zeros((nt,), dtype=dt)
        for t in np.nonzero(mask)[0]:
            flat, off, _ = st.registry.lookup(int(args[0][t]), size, "llvm.load")
            out[t] = flat[off:off + size].view(dt)[0]
    elif name == "gpu.barrier":
        if not mask.all():
            raise EmulatorError("gpu.barrier reached by %d of %d threads at %s"
                                % (int(mask.sum()), nt, op.line))
        for t in st.trackers:
            t.reset()
    elif name == "nvvm.mma.sync":
        out = _mma(op, args, mask, nt)
    elif name == "nvvm.prmt":
        if "permute_mode<default>" not in op.props or len(args) != 3:
            raise EmulatorError("only nvvm.prmt's default mode with two sources is emulated")
        lo = args[0].astype(np.int64) & 0xFFFFFFFF
        hi = args[1].astype(np.int64) & 0xFFFFFFFF
        sel = args[2].astype(np.int64)
        pool = lo | (hi << 32)
        res = np.zeros(nt, dtype=np.int64)
        for k in range(4):
            nib = (sel >> (4 * k)) & 0xF
            if (mask & (nib > 7)).any():
                raise EmulatorError("nvvm.prmt with sign replication")
            res |= ((pool >> (8 * nib)) & 0xFF) << (8 * k)
        out = res.astype(np.uint32).view(np.int32)
    elif name == "llvm.extractvalue":
        out = args[0][_attr_array(op.props, "position")[0]]
    elif name == "llvm.call_intrinsic":
        intrin = re.search(r'intrin = "([\w.]+)"', op.props).group(1)
        if intrin.startswith("llvm.nvvm.prefetch"):
            out = None
        elif intrin.startswith("llvm.nvvm.ex2.approx"):
            with np.errstate(all="ignore"):
                out = np.exp2(args[0].astype(np.float32)).astype(np.float32)
        elif intrin.startswith("llvm.nvvm.lg2.approx"):
            with np.errstate(all="ignore"):
                out = np.log2(args[0].astype(np.float32)).astype(np.float32)
        elif intrin.startswith("llvm.nvvm.rsqrt.approx"):
            with np.errstate(all="ignore"):
                out = (1.0 / np.sqrt(args[0].astype(np.float64))).astype(np.float32)
        else:
            raise EmulatorError("unsupported intrinsic " + intrin)
    elif name == "memref.extract_aligned_pointer_as_index":
        out = np.zeros((nt,), dtype=np.int64)
    elif name == "llvm.inttoptr":
        out = args[0]
    elif name in ("bufferization.to_buffer", "bufferization.to_tensor", "memref.cast"):
        out = args[0]
        shape = _memref_shape("memref" + op.types[0][op.types[0].index("<"):])[0]
        if any(s >= 0 and s != n for s, n in zip(shape, out.array.shape)) or len(shape) != out.array.ndim:
            raise EmulatorError("%s of a %s array to %s" % (name, out.array.shape, op.types[0]))
    elif name in ("memref.dim", "tensor.dim"):
        out = np.full((nt,), args[0].array.shape[int(args[1][0])], dtype=np.int64)
    elif name == "tensor.empty":
        ty = "memref" + op.types[0][op.types[0].index("<"):]
        out = _Memref(_alloc_array(ty, args), _memref_shape(ty)[1])
    elif name == "linalg.fill":
        ety = args[1].ety
        arr = np.empty_like(args[1].array)
        arr[...] = args[0][0]
        out = _Memref(arr, ety)
    elif name == "memref.alloc":
        out = _Memref(_alloc_array(op.types[0], args), _memref_shape(op.types[0])[1])
    elif name in ("memref.collapse_shape", "memref.expand_shape"):
        shape = _memref_shape(op.types[0])[0]
        it = iter(int(x[0]) for x in args[1:])
        if name == "memref.collapse_shape":
            shape = [-1 if s < 0 else s for s in shape]
            arr = args[0].array.reshape(shape)
        else:
            arr = args[0].array.reshape([next(it) if s < 0 else s for s in shape])
        if not np.shares_memory(arr, args[0].array) and arr.size:
            raise EmulatorError(name + " of a non-contiguous buffer")
        out = _Memref(arr, args[0].ety)
    elif name == "gpu.launch_func":
        _launch(op, st, args)
        return
    elif name == "gpu.shuffle":
        val, offset, width = args[0], args[1].astype(np.int64), args[2].astype(np.int64)
        mode = re.search(r"shuffle_mode (\w+)", op.props).group(1)
        tid = np.arange(nt, dtype=np.int64)
        lane = tid % 32
        seg = (lane // width) * width
        src = {"xor": lane ^ offset, "down": lane + offset, "up": lane - offset, "idx": seg + offset}[mode]
        valid = (src >= seg) & (src < seg + width)
        src_t = np.where(valid, tid - lane + src, tid)
        if (mask & valid & ~mask[src_t]).any():
            raise EmulatorError("gpu.shuffle reads an inactive lane at " + op.line)
        env[op.results[0]] = _sel(valid, val[src_t], val)
        env[op.results[1]] = valid
        return
    elif name == "scf.if":
        cond = args[0]
        then_mask = mask & cond
        else_mask = mask & ~cond
        res_then = _run_region(op.regions[0], st, then_mask) if then_mask.any() or op.results else []
        res_else = (_run_region(op.regions[1], st, else_mask)
                    if len(op.regions) > 1 and op.regions[1].ops and (else_mask.any() or op.results) else [])
        for k, r in enumerate(op.results):
            env[r] = _sel(cond, res_then[k], res_else[k])
        return
    elif name == "scf.for":
        _for(op, st, mask, args)
        return
    elif name == "scf.while":
        _while(op, st, mask, args)
        return
    elif name == "gpu.return":
        return
    else:
        raise EmulatorError("unsupported op %s (%s)" % (name, op.line))
    if op.results:
        if len(op.results) != 1:
            raise EmulatorError("multiple results of " + name)
        env[op.results[0]] = out


def _type_of(op, st, k):
    """The element type of operand k (from its value's recorded type)."""
    return st.types[op.operands[k]]


def _for(op, st, mask, args):
    lb, ub, step = args[0], args[1], args[2]
    inits = args[3:]
    region = op.regions[0]
    iv = lb.copy()
    carried = list(inits)
    # one iteration per step for the lanes whose own bounds have iterations
    # left; the others keep their values.
    while True:
        live = mask & (iv < ub)
        if not live.any():
            break
        res = _run_region(region, st, live, [iv] + carried)
        carried = [_sel(live, r, c) for r, c in zip(res, carried)]
        iv = iv + step
    for r, v in zip(op.results, carried):
        st.env[r] = v


def _while(op, st, mask, args):
    before, after = op.regions
    carried = list(args)
    results = list(args)
    live = mask.copy()
    for _ in range(100000):
        res = _run_region(before, st, live, carried)
        cond, fwd = res[0], res[1:]
        leaving = live & ~cond
        results = [_sel(leaving, f, r) for f, r in zip(fwd, results)] if fwd else results
        live = live & cond
        if not live.any():
            break
        carried = _run_region(after, st, live, fwd)
    else:
        raise EmulatorError("scf.while did not end at " + op.line)
    for r, v in zip(op.results, results):
        st.env[r] = v


def _group_memref(per_cta, st):
    """One memref per CTA of the group: a plain memref for one CTA, else
    chosen per thread by its CTA."""
    if len(per_cta) == 1:
        return per_cta[0]
    return _MemrefSet(per_cta, st.cta_of)


def _mma(op, args, mask, nt):
    if "shape = #nvvm.shape<m = 16, n = 8, k = 16>" not in op.props or "bf16" not in op.props:
        raise EmulatorError("only mma.sync m16n8k16 bf16 -> f32 is emulated")
    a = [x.astype(np.int64) & 0xFFFFFFFF for x in args[0:4]]
    b = [x.astype(np.int64) & 0xFFFFFFFF for x in args[4:6]]
    c = [x.astype(np.float64) for x in args[6:10]]
    outs = [np.zeros(nt, dtype=np.float32) for _ in range(4)]
    lo = lambda r: from_bf16((r & 0xFFFF).astype(np.uint16)).astype(np.float64)  # noqa: E731
    hi = lambda r: from_bf16((r >> 16).astype(np.uint16)).astype(np.float64)  # noqa: E731
    for w0 in range(0, nt, 32):
        lanes = np.arange(w0, w0 + 32)
        if not mask[lanes].all():
            if mask[lanes].any():
                raise EmulatorError("mma.sync by a partial warp at " + op.line)
            continue
        grp, tig = (lanes - w0) // 4, (lanes - w0) % 4
        A = np.zeros((16, 16))
        B = np.zeros((16, 8))
        C = np.zeros((16, 8))
        for r, (row_off, col_off) in enumerate([(0, 0), (8, 0), (0, 8), (8, 8)]):
            A[grp + row_off, 2 * tig + col_off] = lo(a[r][lanes])
            A[grp + row_off, 2 * tig + col_off + 1] = hi(a[r][lanes])
        for r, k_off in enumerate([0, 8]):
            B[2 * tig + k_off, grp] = lo(b[r][lanes])
            B[2 * tig + k_off + 1, grp] = hi(b[r][lanes])
        for r, (row_off, col) in enumerate([(0, 0), (0, 1), (8, 0), (8, 1)]):
            C[grp + row_off, 2 * tig + col] = c[r][lanes]
        D = A @ B + C
        for r, (row_off, col) in enumerate([(0, 0), (0, 1), (8, 0), (8, 1)]):
            outs[r][lanes] = D[grp + row_off, 2 * tig + col].astype(np.float32)
    return outs


def run_kernel(kernel, args, grid, dynamic_shared_bytes=None, cluster=None, check_nan_shared=True,
               race_check=True):
    """Runs `kernel` on a grid of `grid` CTAs of kernel.block threads, with
    `dynamic_shared_bytes` of dynamic shared memory per CTA (default: the
    227 KB a CTA may have, when the kernel uses any), in thread-block clusters
    of `cluster` CTAs (default: the kernel's known cluster size), the CTAs of
    a cluster run together, in lockstep. With `race_check`, an access to
    workgroup memory that races with another warp's since the last barrier
    is an EmulatorError (racecheck's hazards; lockstep execution itself
    would hide them).

    `args` follow the kernel's arguments: numpy arrays for memrefs (bf16 / f16
    as uint16 bit patterns, C-contiguous, written in place), ints for index,
    floats for f32.
    """
    region = kernel.region
    if len(args) != kernel.num_args:
        raise EmulatorError("%s takes %d arguments, got %d" % (kernel.name, kernel.num_args, len(args)))
    if dynamic_shared_bytes is None:
        dynamic_shared_bytes = 227 * 1024 if kernel.dynamic_shared else 0
    if cluster is None:
        cluster = kernel.cluster
    if grid % cluster:
        raise EmulatorError("a grid of %d CTAs in clusters of %d" % (grid, cluster))
    block = kernel.block
    nt = block * cluster
    types = {}
    _record_types(region, types)
    registry = _Registry()
    for k, a in enumerate(args):
        if isinstance(a, np.ndarray):
            if not a.flags["C_CONTIGUOUS"]:
                raise EmulatorError("argument %d is not contiguous" % k)
            registry.add(a, (k + 1) << 36)
    for first in range(0, grid, cluster):
        st = _State(nt, block, first, grid, registry)
        st.types = types
        # Shared memory of each CTA of the group: fake addresses below 2^31.
        fill8 = 0xFF if check_nan_shared else 0
        st.shared = [np.full(dynamic_shared_bytes, fill8, dtype=np.uint8) for _ in range(cluster)] \
            if dynamic_shared_bytes else []
        for r, a in enumerate(st.shared):
            registry.add(a, (r + 1) << 26)
        st.race_check = race_check
        st.shared_trackers = [_RaceTracker(a.size) for a in st.shared]
        st.trackers = list(st.shared_trackers)
        vals = []
        for k, (name, ty) in enumerate(zip(region.args, region.arg_types)):
            if k < kernel.num_args:
                a = args[k]
                if ty.startswith("memref"):
                    shape, ety = _memref_shape(ty)
                    if len(shape) != a.ndim or any(s not in (-1, n) for s, n in zip(shape, a.shape)):
                        raise EmulatorError("argument %d of %s: shape %s for %s" % (k, kernel.name, a.shape, ty))
                    vals.append(_Memref(a, ety))
                elif ty == "index":
                    vals.append(np.full((nt,), int(a), dtype=np.int64))
                else:
                    vals.append(np.full((nt,), a, dtype=_elem_dtype(ty)))
            else:
                shape, ety = _memref_shape(ty)
                dt = np.float32 if ety == "f32" else np.uint16
                fill = np.nan if dt == np.float32 and check_nan_shared else 0
                per_cta = []
                for r in range(cluster):
                    arr = np.full(shape, fill, dtype=dt)
                    registry.add(arr, ((r + 1) << 26) + ((k - kernel.num_args + 1) << 22))
                    tracker = _RaceTracker(arr.nbytes)
                    st.trackers.append(tracker)
                    per_cta.append(_Memref(arr, ety, tracker))
                vals.append(_group_memref(per_cta, st))
        _run_region(region, st, np.ones(nt, dtype=bool), vals)
        # This group's shared memory is gone.
        registry.entries = [e for e in registry.entries if e[0] >= (1 << 36)]


def _record_types(region, types):
    """The type of every SSA name (arith.extf needs its source's)."""
    for name, ty in zip(region.args, region.arg_types):
        types[name] = ty
    for op in region.ops:
        for r, t in zip(op.results, op.types):
            types[r] = t
        for sub in op.regions:
            _record_types(sub, types)
