"""Issue 15: every path takes the compiler's one definition of each default.

The chip, PTX features, key-norm epsilon, block-size and num-blocks are
defined once in C++; the pass options, the attnres-lower-to-nvvm pipeline,
attnres-opt, the C API and the Python package must all report that same
value, a change of the definition in one place must reach every Python path
(the package, kernel packs, torch_ops, bench/ and utils/) and the ops' ODS
builders (C++ compiled against the changed header prints the new epsilon),
and scripts/check_one_definition.py must fail when a copy appears
elsewhere."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import attnres
from attnres import defaults, irbuilder, kernel_pack

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
BUILD = os.environ.get("ATTNRES_BUILD_DIR", os.path.join(SRC, "build"))
OPT = os.path.join(BUILD, "bin", "attnres-opt")
CHECKER = os.path.join(SRC, "scripts", "check_one_definition.py")
# The one header of the dialect's defaults (epsilon, block-size, num-blocks).
DEFAULTS_H = defaults.DEFAULTS_HEADER


def _header_value(path, name):
    text = open(os.path.join(SRC, path)).read()
    m = re.search(r"%s\s*=\s*([^;]+);" % name, text)
    assert m, (path, name)
    return m.group(1).strip()


def test_c_api_returns_the_header_definitions():
    chip, features = attnres.default_nvvm_target()
    nvvm = "include/attnres/Target/NVVMTarget.h"
    assert '"%s"' % chip == _header_value(nvvm, "kDefaultChip")
    assert '"%s"' % features == _header_value(nvvm, "kDefaultFeatures")
    eps = _header_value(DEFAULTS_H, "kDefaultEpsilon").rstrip("f")
    assert np.float32(attnres.default_epsilon()) == np.float32(float(eps))
    blocking = (int(_header_value(DEFAULTS_H, "kDefaultBlockSize")),
                int(_header_value(DEFAULTS_H, "kDefaultNumBlocks")))
    assert defaults.blocking() == blocking
    # The package's values are the C API's when the native extension exists.
    assert defaults.epsilon() == attnres.default_epsilon()


@pytest.mark.skipif(not os.path.exists(OPT), reason="attnres-opt not built")
def test_pass_options_and_pipeline_follow_the_definition():
    chip, features = attnres.default_nvvm_target()
    # The validation pass's options (Passes.td) print their defaults.
    out = subprocess.run(
        [OPT, "--pass-pipeline=builtin.module(attnres-validate-nvvm-target)",
         "--dump-pass-pipeline", "-o", os.devnull],
        input="module {}\n", capture_output=True, text=True, check=True)
    dumped = out.stdout + out.stderr
    assert "chip=%s" % chip in dumped and "features=%s" % features in dumped, dumped
    # attnres-blockify and attnres-report print the block defaults.
    s, n = defaults.blocking()
    for name in ("attnres-blockify", "attnres-report"):
        out = subprocess.run(
            [OPT, "--pass-pipeline=builtin.module(%s)" % name, "--dump-pass-pipeline",
             "-o", os.devnull], input="module {}\n", capture_output=True, text=True)
        dumped = out.stdout + out.stderr
        assert "block-size=%d" % s in dumped and "num-blocks=%d" % n in dumped, dumped
    # The pipeline compiles for the default chip when none is named.
    ir = attnres.build_model(2, d=32)
    art = attnres.compile_gpu(ir, "attnres-lower-to-nvvm{format=isa}")
    assert {o.chip for o in art.objects} == {chip}
    assert all('features = "%s"' % features in o.target for o in art.objects)


def test_python_model_epsilon_follows_the_definition():
    eps = attnres.default_epsilon()
    text = attnres.build_model(3, d=8)
    written = set(re.findall(r"epsilon = ([0-9.e+-]+) : f32", text))
    assert written == {irbuilder.eps_literal(eps)}, written
    assert np.float32(float(written.pop())) == np.float32(eps)
    # An explicit value still wins.
    assert irbuilder.eps_literal(1e-3) in attnres.build_model(3, d=8, epsilon=1e-3)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_checker_fails_on_a_second_definition(tmp_path):
    """The grep check can fail: a copy of each default in a Python file of a
    small tree is reported, and the tree without it passes."""
    for rel in ("include/attnres/Target/NVVMTarget.h", DEFAULTS_H):
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(SRC, rel), dst)
    pkg = tmp_path / "python" / "attnres"
    pkg.mkdir(parents=True)
    (pkg / "ok.py").write_text("def f(eps=None):\n    return eps\n")
    run = lambda: subprocess.run([sys.executable, CHECKER, str(tmp_path)],
                                 capture_output=True, text=True)
    ok = run()
    assert ok.returncode == 0 and "one definition each" in ok.stdout, ok.stdout
    (pkg / "ok_blocks.py").write_text(
        "def f(block_size=None, num_blocks=None):\n    return g(block_size=4)\n")
    # A TableGen description may quote a value; an ODS builder's default
    # argument names the constant.
    ops = tmp_path / "include" / "Ops.td"
    ops.write_text('  let description = [{\n    {epsilon = 1.0e-06 : f32}\n  }];\n'
                   '  OpBuilder<(ins CArg<"float", "::mlir::attnres::kDefaultEpsilon">:$e)>\n')
    ok = run()
    assert ok.returncode == 0, ok.stdout
    ops.write_text(ops.read_text() + '  OpBuilder<(ins CArg<"float", "1.0e-6f">:$e)>\n')
    (pkg / "copy.py").write_text(
        'CHIP = "sm_90a"\nFEATURES = "+ptx80"\n\ndef f(eps=1e-6, block_size=1):\n    return eps\n'
        "\nclass C:\n    num_blocks: int = 0\n")
    td = tmp_path / "include" / "Passes.td"
    td.write_text('    Option<"numBlocks", "num-blocks", "int64_t", /*default=*/"0",\n')
    bad = run()
    assert bad.returncode == 1
    for name in ("chip", "features", "epsilon", "block-size", "num-blocks"):
        assert "python/attnres/copy.py" in bad.stdout and "default %s" % name in bad.stdout
    assert "include/Passes.td:1: the default num-blocks" in bad.stdout
    assert "include/Ops.td:5: the default epsilon" in bad.stdout
    assert "include/Ops.td:2:" not in bad.stdout


def _copy_tree(dst, epsilon_text):
    """A copy of the Python sides of the tree (the package without its
    native extension, bench/, utils/) and of the C++ headers with
    kDefaultEpsilon changed to `epsilon_text` in the defaults header: what
    the GPU machine runs."""
    for d in ("python/attnres", "bench", "utils", "include"):
        shutil.copytree(os.path.join(SRC, d), dst / d,
                        ignore=shutil.ignore_patterns("_attnres*.so", "_config.py",
                                                      "__pycache__", "results"))
    header = open(os.path.join(SRC, DEFAULTS_H)).read()
    changed = re.sub(r"kDefaultEpsilon = [^;]+;", "kDefaultEpsilon = %s;" % epsilon_text, header)
    assert changed != header
    (dst / DEFAULTS_H).write_text(changed)


_FOLLOW = r"""
import json, struct
import numpy as np
import attnres
from attnres import defaults, irbuilder, kernel_pack, model
assert not attnres.native_available()
out = {"defaults": defaults.epsilon(),
       "model": model.build_model(2, d=4),
       "irbuilder": irbuilder.eps_literal(None),
       "pack_config": kernel_pack.PackConfig(d=8).epsilon,
       "pack_parse": kernel_pack.parse_config("d=8,sublayers=2").epsilon,
       "pack_kernels": [e["mlir"] for e in kernel_pack.kernel_functions(
           [kernel_pack.PackConfig(d=8, sublayers=2, block_size=1)])]}
from bench import shapes
out["bench_shapes"] = shapes.EPSILON
from utils.reference import block_ref, gen_cpu_tests
out["block_ref"] = block_ref.EPS
out["gen_cpu_tests"] = gen_cpu_tests._eps(None)
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    from attnres import torch_ops, reference
    from bench.e2e import model as e2e
    out["e2e"] = e2e.Config().attnres_eps
    g = torch.Generator().manual_seed(3)
    # Sources of magnitude 1e-3: their mean square (1e-6) is what epsilon is
    # added to, so the two defaults give clearly different weights.
    src = [torch.randn(5, 16, generator=g, dtype=torch.float64) * 1e-3 * (1 + i)
           for i in range(3)]
    w = torch.randn(16, generator=g, dtype=torch.float64)
    gain = 1 + 0.1 * torch.randn(16, generator=g, dtype=torch.float64)
    got = torch_ops.aggregate(w, gain, src)
    out["torch_ops"] = [float((got - reference.aggregate(w, gain, src, e)).abs().max()
                              / reference.aggregate(w, gain, src, e).abs().max())
                        for e in (defaults.epsilon(), 1e-6)]
    out["aggregate_module"] = torch_ops.AttnResAggregate(16).eps
print(json.dumps(out))
"""


@pytest.mark.parametrize("epsilon_text", ["1.0e-3f", "2.5e-4f"])
def test_every_python_path_follows_a_changed_epsilon(tmp_path, epsilon_text):
    """The definition changed in one place (the header of a copy of the
    tree, run without the native extension as on the GPU machine): the
    package, kernel packs, torch_ops, bench/ and utils/ all take the new
    value, and torch_ops' numbers are those of the new epsilon, not 1e-6."""
    _copy_tree(tmp_path, epsilon_text)
    env = {k: v for k, v in os.environ.items() if k != "ATTNRES_BUILD_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "python"), str(tmp_path)])
    p = subprocess.run([sys.executable, "-c", _FOLLOW], capture_output=True, text=True,
                       env=env, cwd=str(tmp_path), timeout=300)
    assert p.returncode == 0, p.stderr
    got = __import__("json").loads(p.stdout)
    want = float(np.float32(float(epsilon_text.rstrip("f"))))
    literal = irbuilder.eps_literal(want)
    for key in ("defaults", "pack_config", "pack_parse", "bench_shapes", "block_ref"):
        assert got[key] == want, (key, got[key], want)
    assert got["gen_cpu_tests"] == float(epsilon_text.rstrip("f"))
    assert got["irbuilder"] == literal
    assert set(re.findall(r"epsilon = ([0-9.e+-]+) : f32", got["model"])) == {literal}
    assert got["pack_kernels"] and all("epsilon = %s : f32" % literal in k
                                       for k in got["pack_kernels"])
    if "torch_ops" in got:
        assert got["e2e"] == want and got["aggregate_module"] == want
        follows, old = got["torch_ops"]
        assert follows < 1e-6 and old > 1e-3, got["torch_ops"]


_ODS_PROGRAM = r"""
// Builds attnres ops through their ODS builders without an epsilon and
// prints them: the builders' default argument is the header's constant.
#include "attnres/Dialect/AttnRes/IR/AttnRes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::attnres;

int main() {
  MLIRContext ctx;
  ctx.loadDialect<AttnResDialect, func::FuncDialect>();
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  Type f32 = b.getF32Type();
  auto x = RankedTensorType::get({4, 8}, f32);
  auto v = RankedTensorType::get({8}, f32);
  auto t = RankedTensorType::get({4}, f32);
  auto f = func::FuncOp::create(b, loc, "f",
                                b.getFunctionType({v, v, x, x, t}, {}));
  Block *entry = f.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value q = entry->getArgument(0), g = entry->getArgument(1);
  Value s0 = entry->getArgument(2), s1 = entry->getArgument(3);
  Value lse = entry->getArgument(4);
  SmallVector<Value> sources = {s0, s1};
  AggregateOp::create(b, loc, q, g, sources);
  InvRmsOp::create(b, loc, s0);
  MergeOp::create(b, loc, s0, lse, q, g, s1, Value());
  func::ReturnOp::create(b, loc);
  if (failed(verify(*module)))
    return 1;
  module->print(llvm::outs());
  return 0;
}
"""


def _build_config():
    """(build dir, C++ compiler, LLVM include dir, LLVM library dir) of this
    build, or None where they are unknown."""
    try:
        from attnres import _config
    except ImportError:
        return None
    cache = os.path.join(_config.BUILD_DIR, "CMakeCache.txt")
    if not os.path.exists(cache):
        return None
    m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", open(cache).read(), re.M)
    if not m:
        return None
    return _config.BUILD_DIR, m.group(1).strip(), _config.LLVM_INCLUDE_DIR, \
        _config.LLVM_LIBRARY_DIR


@pytest.mark.skipif(_build_config() is None, reason="needs this build's CMake configuration")
def test_ods_builders_follow_a_changed_epsilon(tmp_path):
    """The ops' ODS builders take their default epsilon from the header: a
    program compiled against a copy of the headers with kDefaultEpsilon
    changed there (and nowhere else), linked with this build's dialect
    library, builds aggregate, inv_rms and merge without an epsilon and
    prints the new value, not 1e-6."""
    build, cxx, llvm_include, llvm_lib = _build_config()
    dialect_lib = os.path.join(build, "lib", "libAttnResDialect.a")
    libs = [os.path.join(llvm_lib, n) for n in ("libMLIR.so", "libLLVM.so")]
    if not all(os.path.exists(p) for p in [dialect_lib] + libs):
        pytest.skip("needs libAttnResDialect.a, libMLIR.so and libLLVM.so")
    header = open(os.path.join(SRC, DEFAULTS_H)).read()
    changed = re.sub(r"kDefaultEpsilon = [^;]+;", "kDefaultEpsilon = 2.5e-4f;", header)
    assert changed != header
    shutil.copytree(os.path.join(SRC, "include"), tmp_path / "include")
    (tmp_path / DEFAULTS_H).write_text(changed)
    (tmp_path / "ods.cpp").write_text(_ODS_PROGRAM)
    exe = str(tmp_path / "ods")
    cc = subprocess.run(
        [cxx, "-std=c++17", "-O0", "-D_GLIBCXX_USE_CXX11_ABI=1",
         "-D__STDC_CONSTANT_MACROS", "-D__STDC_FORMAT_MACROS", "-D__STDC_LIMIT_MACROS",
         "-I", str(tmp_path / "include"), "-I", os.path.join(build, "include"),
         "-I", llvm_include, str(tmp_path / "ods.cpp"), "-o", exe, dialect_lib] + libs +
        ["-Wl,-rpath," + llvm_lib], capture_output=True, text=True, timeout=900)
    assert cc.returncode == 0, cc.stderr[-4000:]
    out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    eps = [float(e) for e in re.findall(r"epsilon = ([0-9.eE+-]+) : f32", out.stdout)]
    assert len(eps) == 3, out.stdout
    assert all(np.float32(e) == np.float32(2.5e-4) for e in eps), out.stdout
    assert np.float32(attnres.default_epsilon()) != np.float32(2.5e-4)


def _blocks(text):
    """(number of block_sum ops, source counts of the aggregations)."""
    counts = [len(m.group(1).split(",")) for m in
              re.finditer(r"attnres\.aggregate %\S+, %\S+ over (.*?) \{", text)]
    return text.count("attnres.block_sum"), counts


@pytest.mark.parametrize("default,S", [((0, 0), 1), ((2, 0), 2), ((0, 2), 3), ((3, 5), 3)])
def test_python_blocking_follows_the_definition(monkeypatch, default, S):
    """build_model and kernel packs ask the compiler for the block structure
    with its defaults: a changed (block-size, num-blocks) definition (here
    the package's view of it) changes what they build, and S = ceil(L / N)
    is the compiler's (L = 6: N = 2 gives S = 3)."""
    monkeypatch.setattr(defaults, "blocking", lambda: default)
    L = 6
    n_sums, counts = _blocks(attnres.build_model(L, d=8, tokens=2))
    blocks = -(-L // S)
    assert n_sums == (0 if S == 1 else L - blocks)
    assert counts[-1] == 1 + blocks
    aggs, scores, merges = kernel_pack.model_kernels(kernel_pack.PackConfig(d=8, sublayers=L))
    assert {s for s, _ in scores} == (set() if S == 1 else {1, S})
    # An explicit value still wins over the default (block-size over
    # num-blocks, the compiler's rule, so num_blocks only where the default
    # block-size asks for nothing).
    assert _blocks(attnres.build_model(L, block_size=1, d=8, tokens=2))[0] == 0
    assert _blocks(attnres.build_model(L, block_size=2, d=8, tokens=2))[1][-1] == 4
    if default[0] == 0:
        assert _blocks(attnres.build_model(L, num_blocks=3, d=8, tokens=2))[1][-1] == 4
