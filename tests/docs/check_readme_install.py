#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the README's install facts against the build, and runs its install commands.

usage: check_readme_install.py SOURCE_ROOT BUILD_ROOT WORKDIR VERSION DEFAULT_LIBRARY SANITIZE
                               INSTALL(yes|no) LIBRARY

Facts (always): the Changelog's newest version and `find_package(fiberutils X.Y ...)` match
VERSION; with a shared library, the soname and file name the README gives are the ones LIBRARY
(the shared library meson built) has, read with readelf, and every other `libfiberutils.so.N`
the README writes is one of the two.

Commands (with a shared library, INSTALL=yes, and no sanitizer, whose runtime an outside program
would lack): `meson install --destdir` of BUILD_ROOT into WORKDIR, then the README's blocks tagged
`<!-- command: NAME -->`, run by sh in WORKDIR with pkg-config pointed at that install, each
compiling samples/nested_loops.cpp as app.cpp. The program linked by `installed-rpath` must run
with no LD_LIBRARY_PATH and load libfiberutils by its soname; the one linked by `installed`
(no rpath), unless this machine's loader finds some libfiberutils by itself, must fail to start
with the error the README quotes.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

(source_root, build_root, workdir, version, default_library, sanitize, install,
 library) = sys.argv[1:9]
root = pathlib.Path(source_root)
readme_lines = (root / "README.md").read_text().splitlines()
readme = " ".join(" ".join(readme_lines).split())  # facts may be wrapped over lines
errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


def command_block(name):
    """The shell command in the code block after `<!-- command: NAME -->`."""
    for i, line in enumerate(readme_lines):
        if line.strip() == f"<!-- command: {name} -->":
            end = next(j for j in range(i + 2, len(readme_lines))
                       if readme_lines[j].startswith("```"))
            return "\n".join(readme_lines[i + 2:end])
    sys.exit(f"README.md has no <!-- command: {name} --> block")


# --- version facts
major, minor = version.split(".")[:2]
changelog = re.findall(r"### (\d+\.\d+\.\d+) \(", readme)
check(changelog and changelog[0] == version,
      f"the Changelog's newest entry is {changelog[:1]}, the project version {version}")
for wanted in re.findall(r"find_package\(fiberutils (\S+) REQUIRED\)", readme):
    check(wanted == f"{major}.{minor}", f"README: find_package(fiberutils {wanted}) for {version}")

# --- the shared library's names
shared = default_library in ("shared", "both")
soname = None
if shared:
    dynamic = subprocess.run(["readelf", "-d", library], check=True, capture_output=True,
                             text=True).stdout
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dynamic).group(1)
    file_name = pathlib.Path(library).resolve().name
    said = re.findall(r"soname `([^`]+)`", readme)
    check(said == [soname], f"README gives the soname as {said}; the build's is {soname}")
    said = re.findall(r"file `(libfiberutils\.so[^`]*)`", readme)
    check(said == [file_name], f"README gives the file as {said}; the build's is {file_name}")
    for name in set(re.findall(r"libfiberutils\.so(?:\.\d+)+", readme)):
        check(name in (soname, file_name),
              f"README names {name}, neither the soname {soname} nor the file {file_name}")
else:
    print(f"default_library={default_library}: no shared library, soname not checked")

# --- the install commands
if not shared or install != "yes" or sanitize != "none":
    print(f"install commands not run (shared library: {shared}, install: {install}, "
          f"sanitize: {sanitize})")
else:
    work = pathlib.Path(workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}

    def run(cmd, **kw):
        print("+", cmd if isinstance(cmd, str) else " ".join(map(str, cmd)), flush=True)
        return subprocess.run(cmd, cwd=work, env=env, **kw)

    destdir = work / "destdir"
    run(["meson", "install", "-C", build_root, "--destdir", destdir, "--no-rebuild", "--quiet"],
        check=True)
    options = {o["name"]: o["value"] for o in json.loads(run(
        ["meson", "introspect", "--buildoptions", build_root], check=True, capture_output=True,
        text=True).stdout)}
    libdir = destdir / options["prefix"].lstrip("/") / options["libdir"]
    env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = str(destdir)  # the .pc names the final prefix
    shutil.copy(root / "samples" / "nested_loops.cpp", work / "app.cpp")

    # With the rpath: starts with nothing else set, and loads the library by its soname.
    run(["sh", "-ec", command_block("installed-rpath")], check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        run(["readelf", "-d", "app"], check=True, capture_output=True,
                            text=True).stdout)
    check(soname in needed, f"the README's rpath command links {needed}, not {soname}")
    started = run([work / "app"], capture_output=True, text=True)
    check(started.returncode == 0,
          f"the program built by the README's rpath command failed: {started.stderr}")

    # Without it: fails to start with the README's error, unless a libfiberutils of this soname
    # is in the loader's path on this machine (then there is nothing to see).
    run(["sh", "-ec", command_block("installed") + " -o app_plain"], check=True)
    started = run([work / "app_plain"], capture_output=True, text=True)
    quoted = re.search(r"`(error while loading shared libraries: [^`]+)`", readme)
    check(quoted, "README does not quote the loader's error")
    if started.returncode == 0:
        print(f"{soname} is in this machine's loader path: the error is not checked")
    elif quoted:
        check(quoted.group(1) in " ".join(started.stderr.split()),
              f"the loader's error is {started.stderr!r}; the README quotes {quoted.group(1)!r}")

for e in errors:
    print("FAILED:", e, file=sys.stderr)
print(f"README install facts: {len(errors)} problems")
sys.exit(1 if errors else 0)
