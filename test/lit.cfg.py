# -*- Python -*-
# lit configuration of the attnres test suite.

import os
import shutil
import subprocess

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "ATTNRES"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".py", ".c", ".test"]
config.excludes = [
    "CMakeLists.txt",
    "README.md",
    "lit.cfg.py",
    "lit.site.cfg.py",
    "Inputs",
    "lib",
]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attnres_obj_root, "test")

llvm_config.with_system_environment(["HOME", "TMPDIR", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%shlibext", ".so"))
config.substitutions.append(("%attnres_src", config.attnres_src_root))
config.substitutions.append(("%attnres_lib", config.attnres_lib_dir))
config.substitutions.append(
    ("%mlir_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_runner_utils.so"))
)
config.substitutions.append(
    ("%mlir_c_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_c_runner_utils.so"))
)
config.substitutions.append(("%python", "/usr/bin/python3"))
# The Python the tests run finds the attnres package (this build's, else the
# source tree's pure-Python modules) and the repository's utils/ and bench/
# packages through PYTHONPATH: no script edits sys.path.
config.environment["PYTHONPATH"] = os.pathsep.join([
    os.path.join(config.attnres_obj_root, "python_packages"),
    os.path.join(config.attnres_src_root, "python"),
    config.attnres_src_root,
])

# Debian's mlir-opt, for the plugin tests; our tools first in PATH.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.attnres_tools_dir, append_path=True)
config.substitutions.append(
    ("%mlir_opt", os.path.join(config.llvm_tools_dir, "mlir-opt"))
)
config.substitutions.append(
    ("%attnres_plugin", os.path.join(config.attnres_lib_dir, "AttnResPlugin.so"))
)

tool_dirs = [config.attnres_tools_dir, config.llvm_tools_dir]
tools = ["attnres-opt", "mlir-runner", "mlir-translate", "FileCheck", "not", "count"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# lit scrubs the environment: give the CUDA toolkit back to the tools that
# need it (gpu-module-to-binary with format=bin/fatbin runs ptxas).
if config.cuda_home:
    config.environment["CUDA_HOME"] = config.cuda_home
    config.environment["CUDA_PATH"] = config.cuda_home
    if os.path.exists(os.path.join(config.cuda_home, "bin", "ptxas")):
        config.available_features.add("ptxas")
        llvm_config.with_environment(
            "PATH", os.path.join(config.cuda_home, "bin"), append_path=True
        )

# Sanitizer builds: our tools carry the ASan runtime; a plugin loaded into an
# uninstrumented host (Debian's mlir-opt) cannot.
if getattr(config, "attnres_sanitizers", False):
    config.available_features.add("asan")
    # abort_on_error: a sanitizer report must kill the tool with a signal,
    # not exit(1), or `not attnres-opt` would take a crash for a diagnostic.
    config.environment["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    config.environment["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:abort_on_error=1"

# A GPU is present when the driver answers.
if shutil.which("nvidia-smi"):
    try:
        if subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0:
            config.available_features.add("cuda-gpu")
    except Exception:
        pass

# MPICH (Debian's mpich, libmpich-dev): the multi-process runs of partitioned
# models (test/Integration/CPU/mpi). MLIR 22's MPI lowering targets MPICH's
# integer handles by default; its Open MPI path is broken (docs/
# interfaces-tiling-sharding.md), so the tests name MPICH's tools explicitly.
if shutil.which("mpicc.mpich") and shutil.which("mpirun.mpich"):
    config.available_features.add("mpich")

# numpy is needed by the reference generators of the integration tests.
try:
    r = subprocess.run(["/usr/bin/python3", "-c", "import numpy"], capture_output=True)
    if r.returncode == 0:
        config.available_features.add("numpy")
except Exception:
    pass
