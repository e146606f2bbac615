#!/usr/bin/env python3
"""Prints the PTX held by the gpu.binary of an attnres-lower-to-nvvm{format=isa}
output read from stdin (the object's `assembly = "..."` string, with MLIR's
\\XX escapes undone)."""
import re
import sys

text = sys.stdin.read()
m = re.search(r'assembly = "((?:[^"\\]|\\.)*)"', text)
if not m:
    sys.exit("extract_ptx.py: no PTX assembly in the input")
ptx = re.sub(r'\\([0-9A-Fa-f]{2})', lambda x: chr(int(x.group(1), 16)), m.group(1))
sys.stdout.write(ptx.replace('\\\\', '\\'))
