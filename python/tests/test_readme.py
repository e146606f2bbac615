"""The Python example of README.md runs as written."""

import contextlib
import io
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "README.md")


def test_readme_python_example():
    pytest.importorskip("torch")
    text = open(README).read()
    m = re.search(r"<!-- python-example[^>]*-->\s*```python\n(.*?)```\s*<!-- end python-example -->",
                  text, re.S)
    assert m, "README.md has no python-example block"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(m.group(1), "README.md", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert "residual chain of 4 sublayers converted to Full AttnRes" in lines[0]
    assert re.fullmatch(r"sm_90a bin \d+ bytes", lines[1])
