#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds and runs one outside project that uses fiberutils, in a fresh directory under WORKDIR.

usage: run_consumer.py KIND SOURCE_ROOT BUILD_ROOT WORKDIR
  subproject  a meson project (werror=true) with subprojects/fiberutils a symlink to SOURCE_ROOT
  pkgconfig   `meson install --destdir` of BUILD_ROOT, then g++ commands with pkg-config, linking
              the shared and the static library
  cmake       its own such install, then find_package(fiberutils) in a CMake project, linking
              fiberutils::fiberutils and fiberutils::fiberutils_static
Each kind works in WORKDIR/KIND alone, so the three can run in any order or at once. Every program
gets the project version as its argument and checks version.hpp by it.
"""
import json
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
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, check=True, **kw)


def output(*cmd, cwd=work):
    return run(*cmd, cwd=cwd, capture_output=True, text=True).stdout


def fail(message):
    sys.exit(f"FAILED: {message}")


def introspect(what):
    return json.loads(output("meson", "introspect", what, build_root))


version = introspect("--projectinfo")["version"]
options = {o["name"]: o["value"] for o in introspect("--buildoptions")}
# Which libraries this build makes (and installs): both by default.
built_shared = options["default_library"] in ("shared", "both")
built_static = options["default_library"] in ("static", "both")


def install():
    """Installs BUILD_ROOT into WORK/destdir and returns the prefix and libdir as they lie there."""
    destdir = work / "destdir"
    run("meson", "install", "-C", build_root, "--destdir", destdir, "--no-rebuild", "--quiet")
    opts = options
    prefix = destdir / opts["prefix"].lstrip("/")
    libdir = prefix / opts["libdir"]
    for header in ("fiberutils.hpp", "version.hpp", "detail/stream.hpp"):
        if not (prefix / opts["includedir"] / "fiberutils" / header).is_file():
            fail(f"the install has no fiberutils/{header}")
    # The shared library is not in the loader's path; a user would set nothing after a real install.
    env["LD_LIBRARY_PATH"] = str(libdir)
    return prefix, libdir


def needed(program):
    """The shared libraries PROGRAM names in its dynamic section."""
    return [line.split("[", 1)[1].split("]", 1)[0]
            for line in output("readelf", "-d", program).splitlines() if "(NEEDED)" in line]


def check_links(program, shared):
    libs = needed(program)
    has_ours = any(lib.startswith("libfiberutils.so") for lib in libs)
    major, minor = version.split(".")[:2]
    soname = "libfiberutils.so." + (f"0.{minor}" if major == "0" else major)  # lib/meson.build
    if shared and soname not in libs:
        fail(f"{program.name} does not load libfiberutils by its soname: {libs}")
    if not shared and has_ours:
        fail(f"{program.name} was to link libfiberutils.a but loads {libs}")
    run(program, version)


if kind == "subproject":
    project = work / "project"
    shutil.copytree(here / "meson_subproject", project)
    shutil.copy(here / "app.cpp", project)
    (project / "subprojects").mkdir()
    (project / "subprojects" / "fiberutils").symlink_to(source_root)
    run("meson", "setup", "build", cwd=project)
    # Our tests, samples and benchmarks are not built in a parent's build.
    targets = [t["name"] for t in json.loads(output("meson", "introspect", "--targets", "build",
                                                    cwd=project))]
    for unexpected in ("executor_test", "nested_loops", "bench", "test_main"):
        if unexpected in targets:
            fail(f"the parent's build contains fiberutils' target {unexpected}")
    # The parent's werror=true must not reach our sources, and they compile warning-free anyway.
    for command in json.load(open(project / "build" / "compile_commands.json")):
        if "subprojects/fiberutils/" in command["file"] and "-Werror" in command["command"]:
            fail(f"the parent's werror reached {command['file']}")
    log = run("meson", "compile", "-C", "build", "-j", "2", cwd=project, stdout=subprocess.PIPE,
              stderr=subprocess.STDOUT, text=True).stdout
    print(log)
    if "warning:" in log:
        fail("the build printed warnings")
    run(project / "build" / "app", version)
    # A parent that asks for our tests and samples gets them (configured only: building them
    # would compile the whole suite again).
    run("meson", "setup", "build-asking", "-Dfiberutils:tests=enabled",
        "-Dfiberutils:samples=enabled", cwd=project)
    targets = [t["name"] for t in json.loads(output("meson", "introspect", "--targets",
                                                    "build-asking", cwd=project))]
    for expected in ("executor_test", "nested_loops"):
        if expected not in targets:
            fail(f"-Dfiberutils:tests=enabled -Dfiberutils:samples=enabled gave no {expected}")
elif kind == "pkgconfig":
    prefix, libdir = install()
    env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = str(work / "destdir")  # the .pc names the final prefix
    if output("pkg-config", "--modversion", "fiberutils").strip() != version:
        fail("fiberutils.pc has another version")
    cflags = output("pkg-config", "--cflags", "fiberutils").split()
    libs = output("pkg-config", "--libs", "fiberutils").split()
    static_libs = output("pkg-config", "--static", "--libs", "fiberutils").split()
    # Only flags: a bare file name would be this build machine's Boost, not the user's.
    if any(not flag.startswith("-") for flag in static_libs):
        fail(f"pkg-config --static --libs names files: {static_libs}")
    shutil.copy(here / "app.cpp", work)
    cxx = env.get("CXX", "c++").split()
    run(*cxx, "-std=c++20", "app.cpp", "-o", "app", *cflags, *libs)
    check_links(work / "app", shared=built_shared)
    # The static library: the same flags, with our archive asked for by name.
    static_libs = [part for flag in static_libs
                   for part in (["-Wl,-Bstatic", flag, "-Wl,-Bdynamic"] if flag == "-lfiberutils"
                                else [flag])]
    if built_static:
        run(*cxx, "-std=c++20", "app.cpp", "-o", "app_static", *cflags, *static_libs)
        check_links(work / "app_static", shared=False)
elif kind == "cmake":
    prefix, libdir = install()
    project = work / "project"
    shutil.copytree(here / "cmake", project)
    shutil.copy(here / "app.cpp", project)
    # CMake wants one program as CXX; a launcher in front of it (ccache c++) goes separately.
    *launcher, env["CXX"] = env.get("CXX", "c++").split()
    launch = [f"-DCMAKE_CXX_COMPILER_LAUNCHER={';'.join(launcher)}"] if launcher else []
    run("cmake", "-S", project, "-B", project / "build", f"-DCMAKE_PREFIX_PATH={prefix}", *launch)
    run("cmake", "--build", project / "build")
    check_links(project / "build" / "app", shared=built_shared)
    if built_static:
        check_links(project / "build" / "app_static", shared=False)
    # The version file refuses a newer minor version (0.x releases may break the API).
    major, minor = (int(part) for part in version.split(".")[:2])
    refused = subprocess.run(["cmake", "-S", project, "-B", project / "build-newer",
                              f"-DCMAKE_PREFIX_PATH={prefix}",
                              f"-DFIBERUTILS_WANTED={major}.{minor + 1}", *launch],
                             env=env, capture_output=True, text=True)
    if refused.returncode == 0 or "compatible with requested version" not in refused.stderr:
        fail(f"find_package(fiberutils {major}.{minor + 1}) did not refuse version {version}:\n"
             + refused.stderr)
else:
    fail(f"unknown consumer kind {kind}")
print(f"consumer {kind}: ok")
