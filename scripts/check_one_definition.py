"""Checks that each compiler default is written down once (issue 15).

The NVVM chip and PTX features live in include/attnres/Target/NVVMTarget.h,
the key-norm epsilon and the block-size and num-blocks defaults in
include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h; every other path
(the ops' ODS builders, pass options, pipelines, the C API, Python) refers
to them. This script walks the tracked sources (git ls-files, else every
file) and reports each line outside the definition that spells one of those
values as code: the chip, features and epsilon by their value; block-size
and num-blocks, whose values are small integers, where a default is given:
a pass option's default in TableGen, an int64_t blockSize/numBlocks member
initialised with a number in C++, and in Python (read with the ast module) a
parameter, dataclass field or dict.get/argparse default of a
block_size/num_blocks (block, blocks) name that is a number. Tests, docs,
examples, benchmark results, comments and TableGen descriptions may quote
them; ALLOWED lists the remaining files that still do, each with its reason,
so that a new copy anywhere else fails the check.

  python3 scripts/check_one_definition.py [SOURCE_DIR]
"""

import os
import re
import subprocess
import sys

_BLOCK_NAMES = {"block-size": ("block_size", "block", "blockSize", "block-size"),
                "num-blocks": ("num_blocks", "blocks", "numBlocks", "num-blocks")}


def _block_pattern(names):
    """A TableGen option default or a C++ int64_t member initialised with a
    number, for the option spelled by `names`."""
    option, member = names[3], names[2]
    return re.compile(r'"%s",\s*"[^"]*",\s*(/\*default=\*/)?\s*"-?\d+"|'
                      r"\bint64_t\s+%s\s*=\s*-?\d" % (re.escape(option), member))


# The one home of the dialect's defaults (epsilon, block-size, num-blocks).
DIALECT_DEFAULTS = "include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h"

# value name -> (pattern of a copy, the one file that defines it, pattern of
# the definition there)
DEFAULTS = {
    "chip": (re.compile(r"sm_90a"), "include/attnres/Target/NVVMTarget.h", None),
    "features": (re.compile(r"\+ptx80"), "include/attnres/Target/NVVMTarget.h", None),
    "epsilon": (re.compile(r"(?<![\d.])(1e-0?6|1\.0e-0?6f?|0\.000001)(?![\d])"),
                "include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h", None),
    "block-size": (_block_pattern(_BLOCK_NAMES["block-size"]),
                   "include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h",
                   re.compile(r"constexpr int64_t kDefaultBlockSize = \d+;")),
    "num-blocks": (_block_pattern(_BLOCK_NAMES["num-blocks"]),
                   "include/attnres/Dialect/AttnRes/IR/AttnResDefaults.h",
                   re.compile(r"constexpr int64_t kDefaultNumBlocks = \d+;")),
}

# Directories and files whose text may quote the values: tests assert them,
# docs and examples show them, results record what ran.
QUOTING = ("test/", "docs/", "examples/", "bench/results/", "python/tests/",
           "unittests/", "utils/property/")
QUOTING_SUFFIXES = (".md", ".mlir", ".txt", ".json", ".csv", ".test")

# Files that still spell a value as code, with the reason. Keep this short.
ALLOWED = {
    # This checker: its patterns are the values it looks for.
    "scripts/check_one_definition.py": ("chip", "features", "epsilon", "block-size",
                                        "num-blocks"),
    # The end-to-end benchmark model's own hyperparameters: its sublayer
    # RMSNorm epsilon (equal to the default; its AttnRes epsilon is the
    # compiler's) and its block size S = 3.
    "bench/e2e/model.py": ("epsilon", "block-size"),
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


def _python_block_defaults(text):
    """(line, name) of each default of a block-size/num-blocks name that is
    a number in Python source: a parameter default, an annotated field,
    dict.get("block...", N) and add_argument("--block...", default=N)."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    which = {}
    for option, names in _BLOCK_NAMES.items():
        for n in names:
            which[n.replace("-", "_")] = option

    def number(node):
        return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, default in pairs:
                if arg.arg in which and number(default):
                    found.append((default.lineno, which[arg.arg]))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in which and node.value is not None and number(node.value):
                found.append((node.lineno, which[node.target.id]))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            key = node.args[0] if node.args else None
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            name = key.value.lstrip("-").replace("-", "_")
            if name not in which:
                continue
            if node.func.attr == "get" and len(node.args) > 1 and number(node.args[1]):
                found.append((node.lineno, which[name]))
            if node.func.attr == "add_argument":
                for kw in node.keywords:
                    if kw.arg == "default" and number(kw.value):
                        found.append((node.lineno, which[name]))
    return found


def _is_comment(line):
    s = line.strip()
    # A C comment's continuation line is "* text", not "*this, ...".
    return (s.startswith(("#", "//", "/*", "///", '"""', "'''"))
            or re.match(r"\*(\s|/|$)", s) is not None)


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
        if rel.endswith(".py"):
            for number, name in _python_block_defaults("".join(lines)):
                home = DEFAULTS[name][1]
                if name not in ALLOWED.get(rel, ()):
                    problems.append("%s:%d: the default %s is defined in %s, not here: %s"
                                    % (rel, number, name, home, lines[number - 1].strip()))
        in_doc = in_desc = False
        for number, line in enumerate(lines, 1):
            # Python docstrings and C comments quote values as examples.
            if line.count('"""') == 1:
                in_doc = not in_doc
                continue
            # So do TableGen descriptions (documentation, not code).
            if rel.endswith(".td"):
                if in_desc:
                    in_desc = "}];" not in line
                    continue
                if re.match(r"\s*let\s+description\s*=\s*\[\{", line):
                    in_desc = "}];" not in line
                    continue
            if in_doc or _is_comment(line):
                continue
            code = line.split("//")[0] if rel.endswith((".cpp", ".h", ".c")) else line
            if rel.endswith((".py", ".sh", ".cmake", ".txt")):
                code = code.split("#")[0] if not code.lstrip().startswith("#include") else code
            for name, (pattern, home, _) in DEFAULTS.items():
                if rel == home or name in ALLOWED.get(rel, ()):
                    continue
                if pattern.search(code):
                    problems.append("%s:%d: the default %s is defined in %s, not here: %s"
                                    % (rel, number, name, home, line.strip()))
    return problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), os.pardir)
    root = os.path.abspath(root)
    for name, (pattern, home, definition) in DEFAULTS.items():
        with open(os.path.join(root, home), encoding="utf-8") as f:
            if not (definition or pattern).search(f.read()):
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
