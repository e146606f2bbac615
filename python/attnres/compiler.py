"""Compiling MLIR text through attnres pipelines (over libAttnResCAPI.so)."""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

__all__ = [
    "CompileError",
    "CompileResult",
    "Diagnostic",
    "GpuArtifact",
    "GpuObject",
    "compile",
    "compile_gpu",
    "compile_with_diagnostics",
    "compile_host",
    "default_epsilon",
    "default_nvvm_target",
    "HostCode",
    "native_available",
]

_native = None
_native_error = None


def _load_native():
    global _native, _native_error
    if _native is None and _native_error is None:
        try:
            from . import _attnres

            _native = _attnres
        except ImportError as e:  # pragma: no cover - depends on the install
            _native_error = e
    if _native is None:
        raise ImportError(
            "the attnres native extension (_attnres) is not available: build "
            "the CMake target AttnResPythonModules and put "
            "<build>/python_packages on PYTHONPATH, or `pip install ./python` "
            "(docs/python.md). Cause: %s" % (_native_error,)
        )
    return _native


def native_available() -> bool:
    """True when the native extension can be imported."""
    try:
        _load_native()
        return True
    except ImportError:
        return False


@dataclass(frozen=True)
class Diagnostic:
    """One MLIR diagnostic. ``file``/``line``/``column`` come from the first
    file location in ``location`` (empty/0 when there is none, e.g. for a pass
    pipeline syntax error)."""

    severity: str  # "error", "warning", "remark" or "note"
    is_note: bool
    file: str
    line: int
    column: int
    location: str
    message: str
    formatted: str  # "file:line:col: error: message", as mlir-opt prints it

    def __str__(self) -> str:
        return self.formatted


class CompileError(Exception):
    """Parsing, verification, pipeline parsing or a pass failed. ``diagnostics``
    holds every diagnostic produced (errors first-class, with their notes)."""

    #: The message lists at most this many diagnostics, each cut to
    #: MAX_DIAGNOSTIC_CHARS characters; ``diagnostics`` keeps them all, whole.
    MAX_LISTED = 20
    MAX_DIAGNOSTIC_CHARS = 2000

    def __init__(self, message: str, diagnostics: List[Diagnostic]):
        self.diagnostics = list(diagnostics)
        lines = [message]
        for d in self.diagnostics[: self.MAX_LISTED]:
            text = d.formatted
            if len(text) > self.MAX_DIAGNOSTIC_CHARS:
                text = "%s... (%d more characters)" % (
                    text[: self.MAX_DIAGNOSTIC_CHARS],
                    len(text) - self.MAX_DIAGNOSTIC_CHARS)
            lines.append("  " + text)
        if len(self.diagnostics) > self.MAX_LISTED:
            lines.append("  ... and %d more diagnostics"
                         % (len(self.diagnostics) - self.MAX_LISTED))
        super().__init__("\n".join(lines))

    @property
    def errors(self) -> List[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


@dataclass(frozen=True)
class GpuObject:
    """One object of a ``gpu.binary`` op."""

    binary_name: str  # symbol of the gpu.binary (its gpu.module's name)
    target: str  # e.g. '#nvvm.target<O = 3, chip = "sm_90a", ...>'
    chip: str  # e.g. "sm_90a" ("" for non-NVVM targets)
    format: str  # "fatbin", "bin" (cubin), "assembly" (PTX) or "offload"
    data: bytes  # the object itself, loadable with cuModuleLoadData


@dataclass(frozen=True)
class CompileResult:
    text: str
    diagnostics: List[Diagnostic] = field(default_factory=list)
    gpu_objects: List[GpuObject] = field(default_factory=list)

    def remarks(self) -> List[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "remark"]


@dataclass(frozen=True)
class GpuArtifact:
    """What ``compile_gpu`` returns: the whole lowered module (host code that
    launches the kernels, with the ``gpu.binary`` ops embedded) and the
    objects of those ``gpu.binary`` ops as bytes."""

    module_text: str
    objects: List[GpuObject]
    diagnostics: List[Diagnostic]

    def object(self, binary_name: Optional[str] = None) -> GpuObject:
        """The single object (of ``binary_name`` when given)."""
        objs = [o for o in self.objects if binary_name in (None, o.binary_name)]
        if len(objs) != 1:
            raise KeyError(
                "expected one GPU object%s, found %d"
                % (" named %r" % binary_name if binary_name else "", len(objs))
            )
        return objs[0]


def _run(ir: str, pipeline: str, source_name: str, generic: bool,
         debug_info: bool, gpu_objects: bool) -> CompileResult:
    if not isinstance(ir, str):
        raise TypeError("ir must be a str, got %s" % type(ir).__name__)
    if not isinstance(pipeline, str):
        raise TypeError("pipeline must be a str, got %s" % type(pipeline).__name__)
    native = _load_native()
    ok, text, raw_diags, raw_objects = native.compile(
        ir, pipeline, source_name, generic, debug_info, gpu_objects
    )
    diags = [Diagnostic(*d) for d in raw_diags]
    if not ok:
        what = "failed to compile %s" % source_name
        if pipeline.strip():
            what += " with pipeline '%s'" % pipeline.strip()
        raise CompileError(what, diags)
    objects = [GpuObject(*o) for o in raw_objects]
    return CompileResult(text, diags, objects)


def compile_with_diagnostics(ir: str, pipeline: str = "", *,
                             source_name: str = "<string>",
                             generic: bool = False,
                             debug_info: bool = False) -> CompileResult:
    """Like :func:`compile` but also returns the warnings and remarks that a
    successful run produced (e.g. ``attnres-detect-residual-chains{report}``)
    and the GPU objects found in the result."""
    return _run(ir, pipeline, source_name, generic, debug_info, True)


def compile(ir: str, pipeline: str = "", *, source_name: str = "<string>",
            generic: bool = False, debug_info: bool = False) -> str:
    """Parses ``ir`` (verifying it), runs the textual ``pipeline`` and returns
    the printed module.

    ``pipeline`` is either anchored (``builtin.module(canonicalize,cse)``) or a
    bare pass list (``canonicalize,func.func(cse)``), which is anchored on
    ``builtin.module``; the empty pipeline only parses and verifies. Every
    upstream pass and pipeline and the attnres ones are available. Raises
    :class:`CompileError` with the diagnostics on failure.
    """
    return _run(ir, pipeline, source_name, generic, debug_info, False).text


def compile_gpu(ir: str, pipeline: str = "attnres-lower-to-nvvm", *,
                source_name: str = "<string>") -> GpuArtifact:
    """Compiles ``ir`` for the GPU and returns a :class:`GpuArtifact`.

    ``pipeline`` defaults to ``attnres-lower-to-nvvm`` (options go in braces:
    ``attnres-lower-to-nvvm{chip=sm_90a features=+ptx80 format=bin}``). The
    result must contain at least one ``gpu.binary``; otherwise
    :class:`CompileError` is raised.
    """
    result = _run(ir, pipeline, source_name, False, False, True)
    if not result.gpu_objects:
        raise CompileError(
            "pipeline '%s' produced no gpu.binary" % pipeline.strip(),
            result.diagnostics,
        )
    return GpuArtifact(result.text, result.gpu_objects, result.diagnostics)


@dataclass(frozen=True)
class HostCode:
    """What ``compile_host`` returns: the host object (ELF relocatable, with
    the ``gpu.binary`` objects embedded) and the optimised LLVM IR it was
    compiled from."""

    object: bytes
    llvm_ir: str
    diagnostics: List[Diagnostic]


def compile_host(ir: str, pipeline: str, *, source_name: str = "<string>",
                 opt_level: int = 2) -> HostCode:
    """Runs ``pipeline`` on ``ir`` (it must lower everything to the LLVM
    dialect, e.g. ``attnres-lower-to-nvvm``), translates the result to LLVM
    IR and compiles it for the host, all in this process. Raises
    :class:`CompileError` with the diagnostics on failure."""
    if not isinstance(ir, str) or not isinstance(pipeline, str):
        raise TypeError("ir and pipeline must be str")
    ok, obj, llvm_ir, raw = _load_native().compile_host(ir, pipeline, source_name, opt_level)
    diags = [Diagnostic(*d) for d in raw]
    if not ok:
        raise CompileError("failed to compile %s for the host with pipeline '%s'"
                           % (source_name, pipeline.strip()), diags)
    return HostCode(obj, llvm_ir, diags)


def default_nvvm_target() -> Tuple[str, str]:
    """(chip, PTX features) that ``attnres-lower-to-nvvm`` uses when none are
    named: the compiler's one definition (include/attnres/Target/NVVMTarget.h)."""
    return tuple(_load_native().default_nvvm_target())


def default_epsilon() -> float:
    """The key-norm epsilon of ``attnres.aggregate`` and the ops built from it
    when none is written, as the compiler defines it once
    (include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h); an f32
    value widened to a Python float."""
    return float(_load_native().default_epsilon())
