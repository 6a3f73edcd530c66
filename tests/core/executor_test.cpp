// SPDX-License-Identifier: Apache-2.0
//
// The runner design behind every group (lib/executor.cpp): queued tasks hold no stack, runners
// reuse stacks, and a task that suspends on anything (also raw Boost.Fiber primitives) never
// holds back the tasks queued behind it.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
// FIBERUTILS_TEST_SCALE (a divisor, default 1) shrinks the big runs in slow CI configurations
// (TSan maps shadow for every stack, valgrind runs everything ~50x slower).
int test_scale() {
  const char* s = std::getenv("FIBERUTILS_TEST_SCALE");
  const int n = s ? std::atoi(s) : 1;
  return n > 0 ? n : 1;
}
}  // namespace

TEST_SUITE_BEGIN("executor");

TEST_CASE("tasks that never suspend all run on one reused stack" * doctest::timeout(30)) {
  fu::Group g;
  // Warm up: whatever runners this thread needs exist afterwards.
  g.spawn([] {});
  g.join();
  const std::size_t mapped_before = fu::stack_stats().mapped;
  fu::reset_stack_peak();
  long sum = 0;
  for (long i = 0; i < 10000; ++i) g.spawn([&sum, i] { sum += i; });
  g.join();
  CHECK(sum == 10000L * 9999 / 2);
  // One runner drains the queue plus at most one spare it woke; no stack per task.
  CHECK(fu::stack_stats().peak_live <= 2);
  CHECK(fu::stack_stats().mapped - mapped_before <= 2);
}

TEST_CASE("a task suspended on a raw boost mutex does not hold back queued tasks" *
          doctest::timeout(30)) {
  fu::Group g;
  boost::fibers::mutex m;
  std::unique_lock<boost::fibers::mutex> held(m);  // the main fiber holds it
  std::vector<std::string> trace;
  g.spawn([&] {
    trace.push_back("first waits");
    std::lock_guard<boost::fibers::mutex> lk(m);
    trace.push_back("first locked");
  });
  // Queued behind the blocked task: it must still run, and it is what releases the mutex.
  g.spawn([&] {
    trace.push_back("second runs");
  });
  boost::this_fiber::yield();
  boost::this_fiber::yield();
  REQUIRE(trace == std::vector<std::string>{"first waits", "second runs"});
  held.unlock();
  g.join();
  CHECK(trace == std::vector<std::string>{"first waits", "second runs", "first locked"});
}

TEST_CASE("tasks blocked on raw boost condition variables are released by tasks queued behind them" *
          doctest::timeout(30)) {
  fu::Group g;
  boost::fibers::mutex m;
  boost::fibers::condition_variable cv;
  int waiting = 0;
  bool go = false;
  constexpr int kWaiters = 50;
  for (int i = 0; i < kWaiters; ++i)
    g.spawn([&] {
      std::unique_lock<boost::fibers::mutex> lk(m);
      ++waiting;
      cv.wait(lk, [&] { return go; });
    });
  // Spawned last, so it can only run if none of the 50 blocked tasks holds it back.
  g.spawn([&] {
    std::unique_lock<boost::fibers::mutex> lk(m);
    CHECK(waiting == kWaiters);
    go = true;
    cv.notify_all();
  });
  g.join();
  CHECK(go);
}

TEST_CASE("tasks blocked on a raw buffered_channel are fed by a task queued behind them" *
          doctest::timeout(30)) {
  fu::Group g;
  boost::fibers::buffered_channel<int> ch(2);
  std::atomic<int> received{0};
  for (int i = 0; i < 20; ++i)
    g.spawn([&] {
      int v;
      if (ch.pop(v) == boost::fibers::channel_op_status::success) received += v;
    });
  g.spawn([&] {
    for (int i = 0; i < 20; ++i) ch.push(1);
  });
  g.join();
  CHECK(received == 20);
}

TEST_CASE("tasks sleeping with boost::this_fiber::sleep_for all sleep at once" *
          doctest::timeout(30)) {
  fu::Group g;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) g.spawn([] { boost::this_fiber::sleep_for(100ms); });
  g.join();
  // Sequentially this would take 20 s; concurrently about 0.1 s.
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("tasks start in spawn order even when earlier ones suspend" * doctest::timeout(30)) {
  fu::Group g;
  std::vector<int> started;
  for (int i = 0; i < 100; ++i)
    g.spawn([&started, i] {
      started.push_back(i);
      if (i % 3 == 0) fu::this_task::yield();
      if (i % 7 == 0) boost::this_fiber::yield();
    });
  g.join();
  std::vector<int> expected(100);
  for (int i = 0; i < 100; ++i) expected[i] = i;
  CHECK(started == expected);
}

namespace {
// Spawns n tasks that all wait on one gate at once, each on its own stack, checks that they are
// all alive, then lets them finish. Returns how many finished.
int run_tasks_alive_at_once(int n) {
  fu::Semaphore gate(0);
  int started = 0, finished = 0;
  fu::Group g;
  for (int i = 0; i < n; ++i)
    g.spawn([&] {
      ++started;
      gate.acquire();
      ++finished;
    });
  g.spawn([&] {
    while (started < n) fu::this_task::yield();
    // Every task is suspended in acquire(), each on its own stack (guarded only as far as
    // vm.max_map_count allows: the rest are unguarded, nothing fails).
    CHECK(fu::stack_stats().live >= static_cast<std::size_t>(n));
    gate.release(n);
  });
  g.join();
  return finished;
}
}  // namespace

TEST_CASE("a thread's exit ends its parked runners and keeps at most 1024 of their stacks" *
          doctest::timeout(60)) {
  // 3,000 tasks suspended at once on a thread of their own: 3,000 runners, parked idle when the
  // tasks end. The thread's exit ends them in batches and unmaps the stacks beyond those a pool
  // keeps (README, Stacks: 1024), so an ending fiber's extra stack page never piles up.
  int finished = 0;
  std::thread t([&] { finished = run_tasks_alive_at_once(3000); });
  t.join();
  CHECK(finished == 3000);
  CHECK(fu::stack_stats().cached <= 1024);
}

TEST_CASE("100,000 tasks alive at once each get a stack and all finish" * doctest::timeout(120)) {
  const int kTasks = 100000 / test_scale();
  CHECK(run_tasks_alive_at_once(kTasks) == kTasks);
}

TEST_SUITE_END();
