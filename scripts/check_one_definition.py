"""Checks that each compiler default is written down once (issue 15).

The NVVM chip and PTX features live in include/attnres/Target/NVVMTarget.h,
the key-norm epsilon in include/attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h;
every other path (pass options, pipelines, the C API, Python) refers to them.
This script walks the tracked sources (git ls-files, else every file) and
reports each line outside the definition that spells one of those values as
code. Tests, docs, examples, benchmark results and comments may quote them;
ALLOWED lists the remaining files that still do, each with its reason, so that
a new copy anywhere else fails the check.

  python3 scripts/check_one_definition.py [SOURCE_DIR]
"""

import os
import re
import subprocess
import sys

# value name -> (pattern, the one file that defines it)
DEFAULTS = {
    "chip": (re.compile(r"sm_90a"), "include/attnres/Target/NVVMTarget.h"),
    "features": (re.compile(r"\+ptx80"), "include/attnres/Target/NVVMTarget.h"),
    "epsilon": (re.compile(r"(?<![\d.])(1e-0?6|1\.0e-0?6f?|0\.000001)(?![\d])"),
                "include/attnres/Dialect/AttnRes/Analysis/ChainAnalysis.h"),
}

# Directories and files whose text may quote the values: tests assert them,
# docs and examples show them, results record what ran.
QUOTING = ("test/", "docs/", "examples/", "bench/results/", "python/tests/",
           "unittests/", "utils/property/")
QUOTING_SUFFIXES = (".md", ".mlir", ".txt", ".json", ".csv", ".test")

# Files that still spell a value as code, with the reason. Keep this short.
ALLOWED = {
    # This checker: its patterns are the values it looks for.
    "scripts/check_one_definition.py": ("chip", "features", "epsilon"),
    # A lookup table of every chip's minimum PTX version and its error
    # messages' examples, not a default.
    "lib/Conversion/AttnResToGPU/GPUHostPasses.cpp": ("chip", "features"),
    # The validation pass's description quotes a pair as an example.
    "include/attnres/Conversion/Passes.td": ("chip", "features"),
    # ODS builders' default arguments are C++ text in TableGen: the dialect
    # header cannot include the analysis header that defines the epsilon.
    "include/attnres/Dialect/AttnRes/IR/AttnResOps.td": ("epsilon",),
    # The end-to-end benchmark model's own sublayer RMSNorm epsilon (a model
    # hyperparameter that happens to equal the default; its AttnRes epsilon
    # is the compiler's).
    "bench/e2e/model.py": ("epsilon",),
}

CODE_SUFFIXES = (".py", ".cpp", ".h", ".td", ".c", ".sh", ".cmake", ".txt", ".in")


def _files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
        if out:
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "build"))]
        for f in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, f), root))
    return found


def _is_comment(line):
    s = line.strip()
    return s.startswith(("#", "//", "/*", "*", "///", '"""')) or s.startswith("'''")


def check(root):
    problems = []
    for rel in sorted(_files(root)):
        if rel.startswith(QUOTING) or rel.endswith(QUOTING_SUFFIXES):
            if not rel.endswith("CMakeLists.txt"):
                continue
        if not rel.endswith(CODE_SUFFIXES) and not rel.endswith("CMakeLists.txt"):
            continue
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                lines = f.readlines()
        except (OSError, UnicodeDecodeError):
            continue
        in_doc = False
        for number, line in enumerate(lines, 1):
            # Python docstrings and C comments quote values as examples.
            if line.count('"""') == 1:
                in_doc = not in_doc
                continue
            if in_doc or _is_comment(line):
                continue
            code = line.split("//")[0] if rel.endswith((".cpp", ".h", ".c")) else line
            if rel.endswith((".py", ".sh", ".cmake", ".txt")):
                code = code.split("#")[0] if not code.lstrip().startswith("#include") else code
            for name, (pattern, home) in DEFAULTS.items():
                if rel == home or name in ALLOWED.get(rel, ()):
                    continue
                if pattern.search(code):
                    problems.append("%s:%d: the default %s is defined in %s, not here: %s"
                                    % (rel, number, name, home, line.strip()))
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), os.pardir)
    root = os.path.abspath(root)
    for name, (pattern, home) in DEFAULTS.items():
        with open(os.path.join(root, home), encoding="utf-8") as f:
            if not pattern.search(f.read()):
                print("error: %s does not define the default %s" % (home, name))
                return 1
    problems = check(root)
    for p in problems:
        print("error: " + p)
    if problems:
        return 1
    print("one definition each: %s" % ", ".join(sorted(DEFAULTS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
