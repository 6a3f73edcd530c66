// SPDX-License-Identifier: Apache-2.0
//
// Program exit with a run_blocking call still running: the exit waits for the call, which
// completes with its copies intact, then ends with status 0 (no std::terminate); CI runs this
// program under valgrind, which sees that every pool thread was joined and nothing leaked.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
// A task starts a call that sleeps for `call` and then writes `done` to `fd` (when >= 0); once
// the call has started, the task is cancelled and joined: the call is still running afterwards.
void leave_a_call_running(std::chrono::milliseconds call, int fd) {
  // Static: the pool thread may still be inside release() when acquire() has returned here.
  static fu::Semaphore started(0);
  fu::Group g;
  g.spawn([call, fd] {
    fu::run_blocking([call, fd](std::string done) {
      started.release();
      std::this_thread::sleep_for(call);  // the blocking "legacy API"
      if (fd >= 0) (void)!write(fd, done.data(), done.size());  // its copy is still alive
    }, std::string("done"));
  });
  started.acquire();
  g.cancel();
  g.join();
}
}  // namespace

// First in this file, so that the fork happens before this process has any pool thread.
TEST_CASE("a program that exits while a call runs waits for the call and exits with status 0") {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  const auto t0 = Clock::now();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(pipe_fds[0]);
    leave_a_call_running(300ms, pipe_fds[1]);
    std::exit(0);  // static destruction runs fiberutils' exit step with the call still running
  }
  close(pipe_fds[1]);
  std::string got;
  char buf[16];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) got.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(Clock::now() - t0 >= 300ms);
  CHECK(got == "done");  // the call completed before the process ended
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// Returns from main afterwards with a call still running, in this process, which CI's valgrind
// configuration checks for leaks and invalid accesses at exit.
TEST_CASE("main returns while a cancelled task's call still runs") {
  leave_a_call_running(200ms, -1);
  CHECK(true);
}
