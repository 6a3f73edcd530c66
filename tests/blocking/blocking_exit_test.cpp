// SPDX-License-Identifier: Apache-2.0
//
// Program exit with run_blocking calls still running: no std::terminate, no wait for them, no
// leak (CI runs this program under valgrind), and the calls' copies stay valid while they run.
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
// A task starts a call that sleeps for `call`, waits until it has started, cancels the task
// and joins: the call is still running afterwards.
void leave_a_call_running(std::chrono::milliseconds call) {
  // Static: the pool thread may still be inside release() when acquire() has returned here.
  static fu::Semaphore started(0);
  fu::Group g;
  g.spawn([call] {
    fu::run_blocking(
        [call](std::string s) {
          started.release();
          std::this_thread::sleep_for(call);  // the blocking "legacy API"
          return s.size();                    // its copy of s is still alive at exit
        },
        std::string(100, 'x'));
  });
  started.acquire();
  g.cancel();
  g.join();
}
}  // namespace

// First in this file, so that the fork happens before this process has any pool thread.
TEST_CASE("a program that exits while a 30 s call runs exits at once with status 0") {
  const auto t0 = Clock::now();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    leave_a_call_running(30s);
    std::exit(0);  // static destruction runs fiberutils' exit step with the call still running
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  const auto took = Clock::now() - t0;
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(took < 20s);  // the call was not waited for (it would have taken 30 s)
}

// Returns from main afterwards with the call still running, in this process, which CI's
// valgrind configuration checks for leaks and invalid accesses at exit.
TEST_CASE("main returns while a cancelled task's call still runs") {
  leave_a_call_running(300ms);
  CHECK(true);
}
