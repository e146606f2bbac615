"""Loads ahead-of-time compiled attnres libraries (attnres.aot_compile) with ctypes.

Needs neither MLIR nor the native extension: only the library, its JSON
description and libc (the library dlopens libcuda.so.1 when a kernel first
runs). Each lib<name>.so comes with <name>.json, which lists the exported
`_mlir_ciface_*` functions and their parameters: memrefs (inputs in order,
then outputs) and scalars. A memref parameter is passed as a pointer to a
descriptor {allocated, aligned, offset, sizes[rank], strides[rank]} built
from a torch CUDA tensor (data_ptr, sizes, strides in elements).

    lib = AotLibrary("path/libfoo.so")
    lib.use_stream(torch.cuda.current_stream())   # enqueue, don't sync
    call = lib.bind("foo", w, g, v0, v1, out)      # descriptors built once
    call()                                          # launches on that stream
    lib.check()                                     # raises on runtime errors

This module is the one copy of the loader: the benchmarks and
attnres.torch_ops (the torch.library custom ops) are built on it.
See docs/runtime.md.
"""

import ctypes
import struct
import json
import os

__all__ = ["AotError", "AotFunction", "AotLibrary", "TORCH_DTYPE_NAMES",
           "descriptor_type", "make_descriptor"]

_DESCRIPTORS = {}


def descriptor_type(rank):
    """The ctypes Structure of a rank-`rank` memref descriptor."""
    if rank not in _DESCRIPTORS:
        fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
                  ("offset", ctypes.c_int64)]
        if rank:
            fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
        _DESCRIPTORS[rank] = type("MemRef%dD" % rank, (ctypes.Structure,), {"_fields_": fields})
    return _DESCRIPTORS[rank]


TORCH_DTYPE_NAMES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16",
                     "float64": "f64", "int64": "i64", "int32": "i32"}


class AotError(RuntimeError):
    pass


def make_descriptor(tensor, param, cpu=False):
    """A memref descriptor for a CUDA tensor (a CPU tensor for the library
    of a CPU pipeline), checked against the JSON entry."""
    if cpu and tensor.is_cuda:
        raise AotError("%s: the tensor must be on the CPU (a CPU library)" % param["name"])
    if not cpu and not tensor.is_cuda:
        raise AotError("%s: the tensor must be on the GPU" % param["name"])
    dt = TORCH_DTYPE_NAMES.get(str(tensor.dtype).replace("torch.", ""))
    if dt != param["element"]:
        raise AotError("%s: expected element type %s, got %s" % (param["name"], param["element"],
                                                                 tensor.dtype))
    shape = list(tensor.shape)
    if len(shape) != param["rank"] or any(
            e is not None and e != s for e, s in zip(param["shape"], shape)):
        raise AotError("%s: expected shape %s, got %s" % (param["name"], param["shape"], shape))
    return raw_descriptor(tensor)


_PACKERS = {}


def packed_descriptor(tensor):
    """The bytes of a memref descriptor of a tensor (the layout of
    descriptor_type(rank): two pointers, the offset, then sizes and strides,
    all 64-bit), unchecked. About three times cheaper to build than the ctypes
    Structure of raw_descriptor; a bytes object passes to a c_void_p parameter
    as a pointer to its buffer, which the callee only reads."""
    rank = tensor.dim()
    packer = _PACKERS.get(rank)
    if packer is None:
        packer = _PACKERS[rank] = struct.Struct("=%dq" % (3 + 2 * rank))
    ptr = tensor.data_ptr()
    return packer.pack(ptr, ptr, 0, *tensor.shape, *tensor.stride())


def raw_descriptor(tensor):
    """A memref descriptor of a tensor's data pointer, sizes and strides,
    unchecked (the caller checked the tensor)."""
    rank = tensor.dim()
    desc = descriptor_type(rank)()
    # data_ptr already includes the storage offset.
    desc.allocated = desc.aligned = tensor.data_ptr()
    desc.offset = 0
    for i, (s, st) in enumerate(zip(tensor.shape, tensor.stride())):
        desc.sizes[i] = s
        desc.strides[i] = st
    return desc


class AotFunction:
    def __init__(self, lib, entry):
        self.lib = lib
        self.entry = entry
        self.name = entry["name"]
        self.params = entry["params"]
        self.fn = getattr(lib.cdll, entry["symbol"])
        self.fn.restype = None
        argtypes = []
        for p in self.params:
            if p["kind"] == "memref":
                argtypes.append(ctypes.c_void_p)
            elif p["element"] in ("f32",):
                argtypes.append(ctypes.c_float)
            elif p["element"] == "f64":
                argtypes.append(ctypes.c_double)
            else:
                argtypes.append(ctypes.c_int64)
        self.fn.argtypes = argtypes

    def bind(self, *values):
        """A zero-argument callable with the descriptors built once."""
        if len(values) != len(self.params):
            raise AotError("%s takes %d parameters (%s), got %d" % (
                self.entry["name"], len(self.params),
                ", ".join(p["name"] for p in self.params), len(values)))
        keep, args = [], []
        for v, p in zip(values, self.params):
            if p["kind"] == "memref":
                d = make_descriptor(v, p, self.lib.cpu)
                keep.append(d)
                args.append(ctypes.addressof(d))
            else:
                args.append(v)
        fn = self.fn

        def call():
            fn(*args)
        call.keepalive = (keep, values)
        return call

    def __call__(self, *values):
        self.bind(*values)()

    def call_unchecked(self, *tensors):
        """Calls the function on memref-only parameters without checking
        them against the JSON (the caller did): the fast path of the torch
        custom ops. The tensors must stay alive until the call returns,
        which they do here."""
        self.fn(*[packed_descriptor(t) for t in tensors])

    def call_descriptors(self, *descriptors):
        """Calls the function on memref descriptors already packed
        (packed_descriptor or the same layout), unchecked."""
        self.fn(*descriptors)


class AotLibrary:
    def __init__(self, so_path, json_path=None):
        so_path = os.path.abspath(so_path)
        if json_path is None:
            base = os.path.basename(so_path)
            stem = base[3:-3] if base.startswith("lib") and base.endswith(".so") else base
            json_path = os.path.join(os.path.dirname(so_path), stem + ".json")
        with open(json_path) as f:
            self.description = json.load(f)
        self.path = so_path
        self.cdll = ctypes.CDLL(so_path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
        # A CPU library (pipeline "cpu") has no runtime: no stream, no
        # asynchronous errors; its functions run on the calling thread.
        self.cpu = self.description.get("pipeline") == "cpu"
        self.functions = {e["name"]: AotFunction(self, e) for e in self.description["functions"]}
        if self.cpu:
            return
        self.cdll.attnresRuntimeGetLastError.restype = ctypes.c_int
        self.cdll.attnresRuntimeGetLastErrorMessage.restype = ctypes.c_char_p
        self.cdll.attnresRuntimeIsAvailable.restype = ctypes.c_int
        self.cdll.attnresRuntimeSetStream.argtypes = [ctypes.c_void_p]
        self.cdll.attnresRuntimeSetStream.restype = None
        self.cdll.attnresRuntimeGetStream.restype = ctypes.c_void_p
        self.cdll.attnresRuntimeGetStream.argtypes = [ctypes.POINTER(ctypes.c_int)]
        self.cdll.attnresRuntimeSetQuiet.argtypes = [ctypes.c_int]

    def __getitem__(self, name):
        return self.functions[name]

    def available(self):
        return self.cpu or bool(self.cdll.attnresRuntimeIsAvailable())

    def use_stream(self, stream):
        """Compiled functions called on this thread enqueue on `stream` (a
        torch.cuda.Stream or a raw CUstream integer) and return at once."""
        if self.cpu:
            return
        handle = getattr(stream, "cuda_stream", stream)
        self.cdll.attnresRuntimeSetStream(ctypes.c_void_p(handle))

    def reset_stream(self):
        if not self.cpu:
            self.cdll.attnresRuntimeResetStream()

    def set_quiet(self, quiet=True):
        if not self.cpu:
            self.cdll.attnresRuntimeSetQuiet(1 if quiet else 0)

    def error(self):
        if self.cpu:
            return None
        code = self.cdll.attnresRuntimeGetLastError()
        if code == 0:
            return None
        return code, self.cdll.attnresRuntimeGetLastErrorMessage().decode(errors="replace")

    def clear_error(self):
        if not self.cpu:
            self.cdll.attnresRuntimeClearError()

    def check(self):
        err = self.error()
        if err:
            self.clear_error()
            raise AotError("attnres runtime error %d: %s" % err)

    def bind(self, name, *values):
        return self.functions[name].bind(*values)
