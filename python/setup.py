"""pip install ./python  --  the attnres Python package.

Builds the pybind11 extension attnres._attnres against a CMake build of the
project (for libAttnResCAPI.so and the headers) and copies
libAttnResCAPI.so into the package, where the extension finds it through
RPATH=$ORIGIN. libAttnResCAPI.so itself finds Debian's libMLIR.so through its
own RPATH (LLVM's library directory). The LLVM directories, and the tool
paths the package needs at run time, come from the build's generated
attnres/_config.py (CMake), which is installed with the package.

Where the build is: $ATTNRES_BUILD_DIR, else ../build next to this file.
Build it first:  ninja -C build AttnResCAPI
Install offline with Debian's pip (setuptools, wheel and pybind11 are Debian
packages; PyPI is not reachable, so no build isolation):

  python3 -m venv --system-site-packages /tmp/venv
  ATTNRES_BUILD_DIR=$PWD/build /tmp/venv/bin/pip install --no-build-isolation ./python

(or `pip install --break-system-packages ...` for /usr/bin/python3 itself).
See docs/python.md.
"""

import os
import runpy
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

from pybind11.setup_helpers import Pybind11Extension

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.path.abspath(os.environ.get("ATTNRES_BUILD_DIR", os.path.join(REPO, "build")))
CAPI = os.path.join(BUILD, "lib", "libAttnResCAPI.so")
CONFIG = os.path.join(BUILD, "python_packages", "attnres", "_config.py")
if not os.path.exists(CONFIG):
    raise SystemExit("attnres: %s not found. Configure and build the project first "
                     "(ninja -C <build> AttnResCAPI AttnResPythonModules) and set "
                     "ATTNRES_BUILD_DIR=<build>." % CONFIG)
_CFG = runpy.run_path(CONFIG)


class BuildExt(build_ext):
    """Checks that the CMake build exists and ships libAttnResCAPI.so."""

    def run(self):
        if not os.path.exists(CAPI):
            raise SystemExit(
                "attnres: %s not found. Build the C API first "
                "(ninja -C <build> AttnResCAPI) and set ATTNRES_BUILD_DIR=<build>." % CAPI)
        super().run()
        dest = os.path.join(self.build_lib, "attnres")
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(CAPI, os.path.join(dest, "libAttnResCAPI.so"))
        shutil.copy2(CONFIG, os.path.join(dest, "_config.py"))
        if self.inplace:
            shutil.copy2(CAPI, os.path.join(HERE, "attnres", "libAttnResCAPI.so"))


ext = Pybind11Extension(
    "attnres._attnres",
    ["src/AttnResModule.cpp"],
    include_dirs=[os.path.join(REPO, "include"), _CFG["LLVM_INCLUDE_DIR"]],
    library_dirs=[os.path.join(BUILD, "lib")],
    libraries=["AttnResCAPI"],
    extra_link_args=["-Wl,-rpath,$ORIGIN", "-Wl,-rpath," + _CFG["LLVM_LIBRARY_DIR"]],
    cxx_std=17,
)

setup(
    name="attnres",
    version="0.1.0",
    description="Attention Residuals compiler: MLIR pipelines, model builder "
                "and a PyTorch frontend",
    packages=find_packages(include=["attnres", "attnres.*"]),
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
    python_requires=">=3.9",
    install_requires=[],
    extras_require={"torch": ["torch"], "test": ["pytest", "numpy"]},
    zip_safe=False,
)
