#!/usr/bin/env python3
"""Sorts the crashes of a fuzz run into attnres bugs and crashes of Debian's
MLIR parser (docs/reliability.md, "Triage"). Part of the attnres project.

    fuzz_triage.py FUZZ_BINARY INPUT...   replay each input (ASan with full
                                          stacks) and classify its report
    fuzz_triage.py --report REPORT...     classify saved reports

A report is **upstream** only if all of these hold. Otherwise it is
**attnres**: a finding that must fail the run.
- The report has a stack that reaches LLVMFuzzerTestOneInput.
- Above that frame, the stack passes through MLIR's parser entry point
  (mlir::parseSourceString / parseSourceFile / parseAsmSourceFile). The crash
  happened while the input was being parsed, before any attnres pass ran.
- Every frame above LLVMFuzzerTestOneInput lies outside the fuzz binary, in
  Debian's libMLIR/libLLVM, libc or libstdc++. The fuzz binary holds every
  attnres library, so an attnres op's or type's parser shows up as a frame in
  it. The one exception is the sanitizer and libFuzzer runtime linked into the
  binary (allocation and string interceptors, stack printers).
Prints one line per report: `<file>: upstream|attnres: <reason>`. Exit status
0 if every report is upstream, 1 otherwise, and 2 on a usage error.
"""
import os
import re
import subprocess
import sys

FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+\s+(?:in (.*?) )?\(([^()]*?)(?:\+0x[0-9a-f]+)?\)")
# A frame whose location is a source file (libc with debug info) rather than
# a module: "#19 0x... in __libc_start_call_main csu/../libc_start_call_main.h:58:16".
FRAME_SRC = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+ in (\S+) (\S+:\d+(?::\d+)?)\s*$")
PARSER_ENTRY = ("mlir::parseSourceString", "mlir::parseSourceFile", "mlir::parseAsmSourceFile")
# Runtime code that the sanitizers and libFuzzer link into the fuzz binary.
# Prefixes for the runtimes' namespaces; the interceptors by their exact
# name, so that an attnres function named e.g. `freeRows` is not taken for one.
RUNTIME = re.compile(r"^(__asan|__sanitizer|__ubsan|__interceptor|__lsan|___interceptor|fuzzer::|"
                     r"__cxa_|__gxx_personality|operator new|operator delete|"
                     r"(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|"
                     r"mem(cpy|move|set|cmp)|str(len|nlen|cmp|ncmp|chr|dup))(\(|$))")


def first_stack(text):
    """The frames (function or '', module or source) of the first stack trace
    in a sanitizer or libFuzzer report: from a #0 up to the next break in the
    numbering."""
    frames, expected = [], 0
    for line in text.splitlines():
        m = FRAME.match(line) or FRAME_SRC.match(line)
        if not m:
            if frames and line.strip() == "":
                break
            continue
        idx = int(m.group(1))
        if idx == 0 and frames:
            break
        if idx != expected:
            continue
        expected += 1
        if m.re is FRAME:
            frames.append((m.group(2) or "", m.group(3)))
        else:
            frames.append((m.group(2), ""))
    return frames


def classify(text):
    """('upstream' | 'attnres', reason) of one report."""
    frames = first_stack(text)
    if not frames:
        return "attnres", "no stack trace in the report (did the input crash on replay?)"
    entry = next((i for i, (fn, _) in enumerate(frames) if fn.startswith("LLVMFuzzerTestOneInput")), None)
    if entry is None:
        return "attnres", "the stack does not reach LLVMFuzzerTestOneInput (truncated?)"
    binary = frames[entry][1]
    above = frames[:entry]
    if not any(fn.startswith(PARSER_ENTRY) for fn, _ in above):
        return "attnres", "not inside MLIR's parser (a pass or the verifier ran)"
    for fn, module in above:
        if module == binary and not RUNTIME.match(fn):
            return "attnres", "frame in the fuzz binary (attnres code): %s" % (fn or "??")
    crash = next((fn for fn, module in above if module != binary and fn), "??")
    return "upstream", "inside Debian's MLIR parser, at %s" % crash


def replay(binary, path):
    env = dict(os.environ)
    # Full stacks for allocation reports too, symbolized.
    env["ASAN_OPTIONS"] = "detect_leaks=0:fast_unwind_on_malloc=0:symbolize=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    symbolizer = "/usr/lib/llvm-22/bin/llvm-symbolizer"
    if os.path.exists(symbolizer):
        env.setdefault("ASAN_SYMBOLIZER_PATH", symbolizer)
    # libFuzzer's own timeout turns a hang into a report with a stack.
    try:
        r = subprocess.run([binary, "-timeout=25", "-rss_limit_mb=4096", path], env=env,
                           capture_output=True, text=True, errors="replace", timeout=300)
    except subprocess.TimeoutExpired:
        return ""
    return r.stdout + r.stderr


def main(argv):
    if len(argv) >= 2 and argv[0] == "--report":
        reports = [(p, open(p, errors="replace").read()) for p in argv[1:]]
    elif len(argv) >= 2:
        reports = [(p, replay(argv[0], p)) for p in argv[1:]]
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path, text in reports:
        kind, reason = classify(text)
        print("%s: %s: %s" % (path, kind, reason))
        if kind != "upstream":
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
