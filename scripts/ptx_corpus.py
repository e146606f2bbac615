#!/usr/bin/env python3
"""Writes the PTX corpus of one attnres build: the PTX (and, for the
conversion tests, the kernel IR) of every module that goes through the GPU
conversion and attnres-lower-to-nvvm, one file each, so that a refactor of
lib/Conversion/AttnResToGPU is checked with one `diff -r` (docs/gpu.md,
"PTX corpus"):

    python3 scripts/ptx_corpus.py build /tmp/gpu-ref      # before
    python3 scripts/ptx_corpus.py build /tmp/gpu-new      # after
    diff -r /tmp/gpu-ref /tmp/gpu-new

What it compiles (with BUILD/bin/attnres-opt and BUILD/python_packages):
  modules/          bench/gen_modules.py's benchmark and sweep modules and the
                    single-module GPU pipeline tests (test/Pipelines), through
                    attnres-lower-to-nvvm{format=isa}, also at the chips the
                    tests name (sm_75, sm_80);
  kernels_check/    bench/kernels_check/gen.py (every kernel configuration and
                    pass-option variant it benchmarks), with its manifest;
  merge_norm_check/ bench/merge_norm_check/gen.py's modules (its cases());
  conversion/       every `// -----` case of the test/Conversion/AttnResToGPU
                    tests under each convert-attnres-to-gpu option set their RUN
                    lines use: the pass's output (<case>.mlir, the kernel IR)
                    and its PTX through the tests' upstream NVVM pipeline
                    (<case>.ptx); a case the pass rejects gives <case>.err
                    with the diagnostic;
  linalg/           the CPU path: every test/ .mlir file with an attnres op
                    through convert-attnres-to-linalg (--split-input-file),
                    output and diagnostics as text;
  transforms/       examples/, test/Inputs and the transform pass tests through
                    detect + blockify (block-size=2) + fuse-summaries, and the
                    examples and test/Inputs further through
                    attnres-lower-to-llvm.
Only the PTX held by the gpu.binary is written (the gpu.object also carries
compile-time attributes that differ between runs). Exit status 1 if a module
that should compile does not.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Single-module GPU pipeline tests and the chip options their RUN lines use.
PIPELINE_MODULES = [
    ("test/Pipelines/attnres-lower-to-nvvm.mlir",
     ["", "chip=sm_75 features=+ptx70", "chip=sm_80 features=+ptx70"]),
    ("test/Pipelines/attnres-lower-to-nvvm-merge-norm.mlir", [""]),
    ("test/Pipelines/attnres-lower-to-nvvm-ptxas.mlir", [""]),
    ("test/Pipelines/attnres-lower-to-nvvm-deterministic.mlir", [""]),
    ("test/Pipelines/attnres-lower-to-nvvm-grad-ptxas.mlir", [""]),
    ("test/Pipelines/attnres-lower-to-nvvm-score-grad-ptxas.mlir", [""]),
    ("test/Pipelines/attnres-lower-to-nvvm-invalid.mlir", ["chip=sm_80 features=+ptx70"]),
]

# Conversion tests and the convert-attnres-to-gpu options of their RUN lines
# (the ones that succeed).
CONVERSION_TESTS = [
    ("test/Conversion/AttnResToGPU/convert-attnres-to-gpu.mlir",
     ["", "bulk-copy=0", "cluster-split=4"]),
    ("test/Conversion/AttnResToGPU/convert-attnres-to-gpu-sm80.mlir", [""]),
    ("test/Conversion/AttnResToGPU/convert-attnres-to-gpu-sm89.mlir",
     ["", "chip=sm_89 features=+ptx78"]),
    ("test/Conversion/AttnResToGPU/convert-attnres-grad-to-gpu.mlir",
     ["", "grad-ctas=37"]),
]

# The upstream lowering of the conversion tests (it uses the target that
# convert-attnres-to-gpu attached).
UPSTREAM_NVVM = ("builtin.module(convert-scf-to-cf,gpu.module(expand-strided-metadata,"
                 "lower-affine,convert-gpu-to-nvvm,canonicalize,cse,"
                 "reconcile-unrealized-casts),gpu-module-to-binary{format=isa})")


def extract_ptx(text):
    m = re.search(r'assembly = "((?:[^"\\]|\\.)*)"', text)
    if not m:
        return None
    s = re.sub(r'\\([0-9A-Fa-f]{2})', lambda x: chr(int(x.group(1), 16)), m.group(1))
    return s.replace('\\\\', '\\')


def run(args, text=None):
    return subprocess.run(args, input=text, capture_output=True, text=True)


def tag(opts):
    return re.sub(r"[^A-Za-z0-9]+", "_", opts).strip("_")


class Corpus:
    def __init__(self, build, out, jobs):
        self.opt = os.path.join(os.path.abspath(build), "bin", "attnres-opt")
        self.py = os.path.join(os.path.abspath(build), "python_packages")
        self.out = os.path.abspath(out)
        self.jobs = jobs
        self.failures = []

    def write(self, rel, text):
        path = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def lower_module(self, src, opts, rel):
        pipe = "--attnres-lower-to-nvvm=format=isa" + (" " + opts if opts else "")
        r = run([self.opt, src, pipe])
        ptx = extract_ptx(r.stdout) if r.returncode == 0 else None
        if ptx is None:
            self.failures.append(f"{src} [{opts}]: {r.stderr.strip()[:400]}")
            return
        self.write(rel, ptx)

    def modules(self, pool):
        mods = tempfile.mkdtemp()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([self.py, ROOT]))
        r = subprocess.run([sys.executable, "-m", "bench.gen_modules", "-o", mods], cwd=ROOT,
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            self.failures.append("bench.gen_modules: " + r.stderr.strip()[:400])
            return []
        jobs = []
        for f in sorted(os.listdir(mods)):
            if f.endswith(".mlir"):
                jobs.append(pool.submit(self.lower_module, os.path.join(mods, f), "",
                                        "modules/" + f[:-5] + ".ptx"))
        for src, variants in PIPELINE_MODULES:
            name = os.path.basename(src)[:-5]
            for opts in variants:
                suffix = ("." + tag(opts)) if opts else ""
                jobs.append(pool.submit(self.lower_module, os.path.join(ROOT, src), opts,
                                        f"modules/{name}{suffix}.ptx"))
        return jobs + [mods]

    def conversion_case(self, text, opts, rel):
        conv = "--convert-attnres-to-gpu" + (f"={opts}" if opts else "")
        r = run([self.opt, "-", conv], text)
        if r.returncode != 0:
            # The tests' expected-error cases: keep the diagnostic.
            self.write(rel + ".err", re.sub(r"^[^:]*<stdin>|^-", "<input>", r.stderr,
                                            flags=re.M))
            return
        self.write(rel + ".mlir", r.stdout)
        if "gpu.module" not in r.stdout:
            return
        p = run([self.opt, "-", "--pass-pipeline=" + UPSTREAM_NVVM], r.stdout)
        ptx = extract_ptx(p.stdout) if p.returncode == 0 else None
        if ptx is None:
            self.failures.append(f"{rel} [{opts}]: {p.stderr.strip()[:400]}")
            return
        self.write(rel + ".ptx", ptx)

    def conversion(self, pool):
        jobs = []
        for src, variants in CONVERSION_TESTS:
            name = os.path.basename(src)[:-5]
            with open(os.path.join(ROOT, src)) as f:
                cases = re.split(r"^// -----\s*$", f.read(), flags=re.M)
            for k, case in enumerate(cases):
                # verify-diagnostics annotations are comments: the pass sees
                # the same IR as in the test.
                for opts in variants:
                    rel = f"conversion/{name}/{k:02d}" + (("." + tag(opts)) if opts else "")
                    jobs.append(pool.submit(self.conversion_case, case, opts, rel))
        return jobs

    def linalg_case(self, src, rel):
        # The CPU path's decomposition: every file of the test suite with an
        # attnres op, case by case, through convert-attnres-to-linalg (a
        # case the pass or the parser rejects gives its diagnostic).
        r = run([self.opt, src, "--convert-attnres-to-linalg", "--split-input-file"])
        self.write(rel, r.stdout + r.stderr)

    def transforms_case(self, src, rel):
        # The passes before conversion, chained as a user runs them, and the
        # whole CPU pipeline after them.
        chain = ["--attnres-detect-residual-chains", "--attnres-blockify=block-size=2",
                 "--attnres-fuse-summaries"]
        r = run([self.opt, src, *chain, "--split-input-file"])
        self.write(rel + ".mlir", r.stdout + r.stderr)
        if src.startswith(os.path.join(ROOT, "examples")) or "/test/Inputs/" in src:
            r = run([self.opt, src, *chain, "--attnres-lower-to-llvm"])
            self.write(rel + ".llvm.mlir", r.stdout + r.stderr)

    def transforms(self, pool):
        srcs = [os.path.join(ROOT, "examples", f) for f in sorted(os.listdir(
            os.path.join(ROOT, "examples"))) if f.endswith(".mlir")]
        for d in ("test/Inputs", "test/Dialect/AttnRes/Transforms"):
            srcs += [os.path.join(ROOT, d, f) for f in sorted(os.listdir(os.path.join(ROOT, d)))
                     if f.endswith(".mlir")]
        return [pool.submit(self.transforms_case, src,
                            "transforms/" + os.path.relpath(src, ROOT).replace(os.sep, "_")[:-5])
                for src in srcs]

    def linalg(self, pool):
        jobs = []
        test = os.path.join(ROOT, "test")
        for d, _, files in sorted(os.walk(test)):
            for f in sorted(files):
                path = os.path.join(d, f)
                if not f.endswith(".mlir"):
                    continue
                with open(path, errors="replace") as fh:
                    if "attnres." not in fh.read():
                        continue
                rel = os.path.relpath(path, test).replace(os.sep, "_")
                jobs.append(pool.submit(self.linalg_case, path, "linalg/" + rel))
        return jobs

    def generators(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([self.py, ROOT]))
        kc = os.path.join(self.out, "kernels_check")
        r = subprocess.run([sys.executable, "bench/kernels_check/gen.py", self.opt, kc],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            self.failures.append("bench/kernels_check/gen.py: " + r.stderr.strip()[-400:])

    def merge_norm_case(self, name, mlir):
        # As bench/merge_norm_check/gen.py compiles it (the first object).
        a = run([self.opt, "-", "--convert-attnres-to-gpu"], mlir)
        b = run([self.opt, "-", "--attnres-lower-to-nvvm=format=isa"], a.stdout)
        ptx = extract_ptx(b.stdout) if a.returncode == 0 and b.returncode == 0 else None
        if ptx is None:
            self.failures.append(f"merge_norm_check {name}: {a.stderr}{b.stderr}"[:400])
            return
        self.write(f"merge_norm_check/{name}.ptx", ptx)

    def merge_norm(self, pool):
        # The cases come from the generator itself, run with the build's
        # package and the repository on PYTHONPATH (no sys.path edits here).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([self.py, ROOT]))
        listing = subprocess.run(
            [sys.executable, "-c",
             "import json; from bench.merge_norm_check.gen import cases; "
             "print(json.dumps([[e['name'], m] for e, m in cases()]))"],
            env=env, capture_output=True, text=True)
        if listing.returncode != 0:
            self.failures.append("bench/merge_norm_check/gen.py: " + listing.stderr.strip()[-400:])
            return []
        return [pool.submit(self.merge_norm_case, name, mlir)
                for name, mlir in json.loads(listing.stdout)]

    def build(self):
        if os.path.exists(self.out):
            shutil.rmtree(self.out)
        os.makedirs(self.out)
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
            jobs = self.modules(pool)
            tmp = jobs.pop() if jobs and isinstance(jobs[-1], str) else None
            jobs += self.conversion(pool)
            jobs += self.linalg(pool)
            jobs += self.transforms(pool)
            jobs += self.merge_norm(pool)
            gen = pool.submit(self.generators)
            for j in jobs + [gen]:
                j.result()
            if tmp:
                shutil.rmtree(tmp)
        n = sum(len(fs) for _, _, fs in os.walk(self.out))
        print(f"ptx_corpus: {n} files in {self.out}")
        for f in self.failures:
            print("ptx_corpus: FAILED:", f, file=sys.stderr)
        return 1 if self.failures else 0


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ptx_corpus.py BUILD_DIR OUT_DIR  (JOBS=n in the environment, default 2)")
    sys.exit(Corpus(sys.argv[1], sys.argv[2], int(os.environ.get("JOBS", "2"))).build())


if __name__ == "__main__":
    main()
