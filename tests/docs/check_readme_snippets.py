#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the README's code examples are the code the build compiles and runs.

Every README code block preceded by a line `<!-- snippet: FILE#NAME -->` must equal, line for line
(after removing the common indentation), the lines between the two `// [NAME]` markers of FILE
(a sample, or tests/docs/readme_snippets.cpp). Both are built and run as tests, so a README example
that stops compiling or stops doing what it says fails the suite. Fails too when the README has no
tagged block at all, or a tag names a missing file or marker.

usage: check_readme_snippets.py SOURCE_ROOT [--update]   (--update rewrites the README's blocks)
"""
import pathlib
import re
import sys
import textwrap

root = pathlib.Path(sys.argv[1])
update = "--update" in sys.argv[2:]
readme = (root / "README.md").read_text().splitlines()

def region(path, name):
    lines = (root / path).read_text().splitlines()
    marks = [i for i, l in enumerate(lines) if l.strip() == f"// [{name}]"]
    if len(marks) != 2:
        raise SystemExit(f"{path}: expected two '// [{name}]' markers, found {len(marks)}")
    return textwrap.dedent("\n".join(lines[marks[0] + 1 : marks[1]])).strip("\n")

checked = 0
errors = []
for i, line in enumerate(readme):
    m = re.fullmatch(r"<!-- snippet: (\S+)#(\S+) -->", line.strip())
    if not m:
        continue
    start = i + 1
    if start >= len(readme) or not readme[start].startswith("```"):
        errors.append(f"README.md:{i + 1}: a snippet tag must be followed by a code block")
        continue
    end = next(j for j in range(start + 1, len(readme)) if readme[j].startswith("```"))
    shown = textwrap.dedent("\n".join(readme[start + 1 : end])).strip("\n")
    expected = region(m.group(1), m.group(2))
    if shown != expected and update:
        readme[start + 1 : end] = expected.splitlines()
    elif shown != expected:
        errors.append(f"README.md:{i + 1}: block differs from {m.group(1)}#{m.group(2)}:\n"
                      f"--- README\n{shown}\n--- {m.group(1)}\n{expected}")
    checked += 1

if update:
    (root / "README.md").write_text("\n".join(readme) + "\n")
if checked == 0:
    errors.append("README.md has no <!-- snippet: FILE#NAME --> blocks")
for e in errors:
    print(e, file=sys.stderr)
print(f"{checked} README snippets checked, {len(errors)} problems")
sys.exit(1 if errors else 0)
