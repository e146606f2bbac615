#!/usr/bin/env python3
# Part of the attnres project.
#
# Usage: expect-exit.py CODE COMMAND [ARGS...]
# Runs COMMAND with the inherited stdin/stdout/stderr and succeeds only when
# it exits with exactly CODE. `not` accepts any non-zero code, including the
# ones of a crash or an abort; the bad-input tests need a clean error exit.
import subprocess
import sys

expected = int(sys.argv[1])
code = subprocess.run(sys.argv[2:]).returncode
if code != expected:
    sys.stderr.write(
        "expect-exit.py: exit code %d, expected %d: %s\n"
        % (code, expected, " ".join(sys.argv[2:]))
    )
    sys.exit(1)
