"""Issue 15: every path takes the compiler's one definition of each default.

The chip, PTX features and key-norm epsilon are defined once in C++; the
pass options, the attnres-lower-to-nvvm pipeline, attnres-opt, the C API and
the Python package must all report that same value, and
scripts/check_one_definition.py must fail when a copy appears elsewhere."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import attnres
from attnres import irbuilder

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
BUILD = os.environ.get("ATTNRES_BUILD_DIR", os.path.join(SRC, "build"))
OPT = os.path.join(BUILD, "bin", "attnres-opt")
CHECKER = os.path.join(SRC, "scripts", "check_one_definition.py")


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
    eps = _header_value("include/attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h",
                        "kDefaultEpsilon").rstrip("f")
    assert np.float32(attnres.default_epsilon()) == np.float32(float(eps))


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
    for rel in ("include/attnres/Target/NVVMTarget.h",
                "include/attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"):
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
    (pkg / "copy.py").write_text(
        'CHIP = "sm_90a"\nFEATURES = "+ptx80"\n\ndef f(eps=1e-6):\n    return eps\n')
    bad = run()
    assert bad.returncode == 1
    for name in ("chip", "features", "epsilon"):
        assert "python/attnres/copy.py" in bad.stdout and "default %s" % name in bad.stdout
