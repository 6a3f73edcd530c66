#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles SOURCE, expecting failure with MESSAGE in the compiler's output.

usage: expect_compile_error.py SOURCE MESSAGE COMPILER... -- FLAGS...
Fails when the source compiles, when it fails without the library's message, or when other
errors come with it (a wall of template errors instead of the one a user should see).
"""
import subprocess
import sys

source, message = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
split = rest.index("--")
cmd = rest[:split] + rest[split + 1:] + ["-fsyntax-only", source]
result = subprocess.run(cmd, capture_output=True, text=True)
if result.returncode == 0:
    sys.exit(f"{source} compiled, but it must not")
if message not in result.stderr:
    print(result.stderr[-3000:], file=sys.stderr)
    sys.exit(f"{source} failed to compile without the message {message!r}")
errors = [line for line in result.stderr.splitlines() if " error: " in line or line.startswith("error: ")]
if len(errors) != 1:
    print(result.stderr[-6000:], file=sys.stderr)
    sys.exit(f"{source}: {len(errors)} errors, but the library's message must be the only one")
print(f"{source}: rejected with {message!r}")
