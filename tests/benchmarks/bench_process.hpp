// SPDX-License-Identifier: Apache-2.0
//
// The process side of every benchmark program: failing loudly on a wrong result (exit status 3,
// the line naming the program), and running one measurement in a fresh process of the same
// program (its standard output captured, its wait status and resource use returned), so that
// page faults, stack pools and Boost.Fiber's per-process state of one run don't carry into the
// next. Each program defines bench::program_name once (bench_main.cpp for `bench`).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

// The program's name, which starts its failure lines; each program defines it.
extern const char program_name[];

// Every run checks its result and fails loudly when it is wrong: a fast wrong answer is no
// figure.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "%s: WRONG RESULT: %s\n", program_name, what);
  std::exit(3);
}
inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// What a child process left behind.
struct ChildRun {
  std::string out;  // all it wrote to its standard output
  int status = 0;   // as wait4() reports it
  rusage usage{};   // its resource use (ru_maxrss: its peak RSS)
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Runs this program again (/proc/self/exe) with the arguments `args` (args[0] is the name the
// child sees), its standard output read through a pipe to its end, and waits for it. Its
// standard error is this process's. Stdout is flushed first, so what this process printed
// before stands before anything the child writes to a shared terminal.
inline ChildRun run_self(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  int out[2];
  check(::pipe(out) == 0, "pipe");
  std::fflush(stdout);
  const pid_t pid = ::fork();
  check(pid >= 0, "fork");
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::execv("/proc/self/exe", const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  ::close(out[1]);
  ChildRun run;
  char buf[256];
  for (ssize_t r; (r = ::read(out[0], buf, sizeof buf)) > 0;) run.out.append(buf, static_cast<std::size_t>(r));
  ::close(out[0]);
  check(::wait4(pid, &run.status, 0, &run.usage) == pid, "wait4");
  return run;
}

}  // namespace bench
