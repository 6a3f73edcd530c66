#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds and runs one outside project that uses fiberutils, in a fresh directory under WORKDIR.

usage: run_consumer.py KIND SOURCE_ROOT BUILD_ROOT WORKDIR
  subproject  a meson project with subprojects/fiberutils a symlink to SOURCE_ROOT
  pkgconfig   `meson install --destdir` of BUILD_ROOT, then one g++ command with pkg-config
  cmake       the same install, then find_package(fiberutils) in a CMake project
"""
import os
import pathlib
import shutil
import subprocess
import sys

kind, source_root, build_root, workdir = sys.argv[1:5]
source_root = pathlib.Path(source_root).resolve()
here = pathlib.Path(__file__).resolve().parent
work = pathlib.Path(workdir).resolve() / kind
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)
env = dict(os.environ)


def run(*cmd, cwd=work, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=True, **kw)


def install():
    """Installs BUILD_ROOT into WORK/destdir and returns the prefix as it lies there."""
    destdir = work / "destdir"
    run("meson", "install", "-C", build_root, "--destdir", destdir, "--no-rebuild", "--quiet")
    out = subprocess.run(["meson", "introspect", "--buildoptions", build_root],
                         capture_output=True, text=True, check=True).stdout
    import json
    opts = {o["name"]: o["value"] for o in json.loads(out)}
    prefix = destdir / opts["prefix"].lstrip("/")
    libdir = prefix / opts["libdir"]
    env["LD_LIBRARY_PATH"] = str(libdir)  # the shared library is not in the loader's path
    return prefix, libdir


if kind == "subproject":
    project = work / "project"
    shutil.copytree(here / "meson_subproject", project)
    shutil.copy(here / "app.cpp", project)
    (project / "subprojects").mkdir()
    (project / "subprojects" / "fiberutils").symlink_to(source_root)
    run("meson", "setup", "build", cwd=project)
    # Our tests, samples and benchmarks are not built in a parent's build.
    targets = subprocess.run(["meson", "introspect", "--targets", "build"], cwd=project,
                             capture_output=True, text=True, check=True).stdout
    for unexpected in ('"executor_test"', '"nested_loops"', '"bench"'):
        if unexpected in targets:
            sys.exit(f"the parent's build contains fiberutils' target {unexpected}")
    run("meson", "compile", "-C", "build", cwd=project)
    run(project / "build" / "app")
elif kind == "pkgconfig":
    prefix, libdir = install()
    env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = str(work / "destdir")  # the .pc names the final prefix
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fiberutils"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    shutil.copy(here / "app.cpp", work)
    run(os.environ.get("CXX", "c++"), "-std=c++20", "app.cpp", "-o", "app", *flags)
    run(work / "app")
elif kind == "cmake":
    prefix, libdir = install()
    project = work / "project"
    shutil.copytree(here / "cmake", project)
    shutil.copy(here / "app.cpp", project)
    run("cmake", "-S", project, "-B", project / "build", f"-DCMAKE_PREFIX_PATH={prefix}")
    run("cmake", "--build", project / "build")
    run(project / "build" / "app")
else:
    sys.exit(f"unknown consumer kind {kind}")
