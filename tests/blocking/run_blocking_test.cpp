// SPDX-License-Identifier: Apache-2.0
//
// fu::run_blocking: results, exceptions and void through the pool; the thread is not blocked;
// cancellation while a call runs; calls from plain code, other threads and a stream's tasks;
// misuse of set_blocking_threads. The pool's maximum and FIFO queueing: blocking_pool_test;
// program exit with calls still running: blocking_exit_test.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <semaphore>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Counted;

namespace {
int global_value = 0;
int& global_ref() {
  return global_value;
}

// Waits, blocking the thread, until Counted::live is back to `n` or 10 s have passed: a pool
// thread destroys a call's copies right after the call, which the caller does not wait for.
bool live_counted_becomes(long n) {
  const auto until = Clock::now() + 10s;
  while (Counted::live.load() != n && Clock::now() < until)
    std::this_thread::yield();
  return Counted::live.load() == n;
}
}  // namespace

TEST_CASE("a value, a reference, a move-only result and void come back from the pool thread") {
  const auto caller = std::this_thread::get_id();
  CHECK(fu::run_blocking([](int a, int b) { return a + b; }, 2, 3) == 5);
  CHECK(fu::run_blocking([] { return std::this_thread::get_id(); }) != caller);
  CHECK(&fu::run_blocking(global_ref) == &global_value);
  std::unique_ptr<int> p =
      fu::run_blocking([](std::unique_ptr<int> q) { return q; }, std::make_unique<int>(42));
  REQUIRE(p);
  CHECK(*p == 42);
  int side_effect = 0;
  fu::run_blocking([](int& s) { s = 7; }, std::ref(side_effect));
  static_assert(std::is_void_v<decltype(fu::run_blocking([] {}))>);
  CHECK(side_effect == 7);
}

TEST_CASE("an exception thrown by the call is rethrown to the caller, std or not") {
  CHECK_THROWS_WITH_AS(fu::run_blocking([] { throw std::runtime_error("disk on fire"); }),
                       "disk on fire", std::runtime_error);
  CHECK_THROWS_AS(fu::run_blocking([]() -> int { throw 17; }), int);
  // And the pool keeps working after it.
  CHECK(fu::run_blocking([] { return 1; }) == 1);
}

TEST_CASE("f and its arguments are decay-copied, and the copies are gone once the call returned") {
  {
    Counted c(5);
    std::string s = "abc";
    const long got = fu::run_blocking(
        [](Counted x, const std::string& t) { return x.v + static_cast<long>(t.size()); }, c, s);
    CHECK(got == 8);
    CHECK(Counted::live.load() == 1);  // only c: the pool's copies were destroyed before return
  }
  CHECK(Counted::live.load() == 0);
}

TEST_CASE("a blocking call waits for another task of the same thread: the thread is not blocked") {
  // The call blocks its pool thread on a std::binary_semaphore that only a task of this thread
  // releases. If run_blocking blocked this thread, that task could never run and the call would
  // give up after 10 s.
  std::binary_semaphore released{0};
  bool call_saw_release = false;
  int ticks = 0;
  fu::Group g;
  g.spawn(
      [&] { call_saw_release = fu::run_blocking([&] { return released.try_acquire_for(10s); }); });
  g.spawn([&] {
    for (; ticks < 3; ++ticks)
      fu::this_task::sleep_for(1ms);
    released.release();
  });
  g.join();
  CHECK(ticks == 3);
  CHECK(call_saw_release);
}

TEST_CASE("from plain code run_blocking suspends the main fiber and this thread's tasks run") {
  fu::Group g;
  std::atomic<bool> task_ran{false};
  g.spawn([&] { task_ran = true; });
  // Not joined yet: only a suspension of the main fiber lets the task run, and the call waits
  // (blocking its pool thread) until it has.
  const bool seen = fu::run_blocking([&] {
    const auto until = Clock::now() + 10s;
    while (!task_ran && Clock::now() < until)
      std::this_thread::yield();
    return task_ran.load();
  });
  CHECK(seen);
  g.join();
}

TEST_CASE(
    "a task stopped while its call runs ends at once; the call completes and nothing dangles") {
  REQUIRE(Counted::live.load() == 0);
  fu::Semaphore call_started(0);          // released by the call, acquired by this fiber
  std::binary_semaphore let_call_end{0};  // the call blocks its pool thread on it
  std::binary_semaphore call_ended{0};
  std::atomic<long> call_saw{0};
  std::atomic<bool> task_cancelled{false};
  {
    fu::Group g;
    g.spawn([&] {
      try {
        (void)fu::run_blocking(
            [&](Counted c, std::string s) {
              call_started.release();
              let_call_end.acquire();
              call_saw = c.v + static_cast<long>(s.size());  // its copies are alive
              call_ended.release();
              return s;
            },
            Counted(40), std::string(2, 'x'));
      } catch (const fu::cancelled&) {
        task_cancelled = true;
        throw;
      }
      FAIL("run_blocking returned after the task was cancelled");
    });
    call_started.acquire();
    g.cancel();
    g.join();  // returns while the call is still blocked
    CHECK(task_cancelled);
    CHECK(call_saw.load() == 0);
  }  // the group and the task's frame are gone; the call still holds its copies
  CHECK(Counted::live.load() == 2);  // the call's stored copy and its by-value parameter
  let_call_end.release();
  REQUIRE(call_ended.try_acquire_for(10s));
  CHECK(call_saw.load() == 42);
  CHECK(live_counted_becomes(0));
}

TEST_CASE("a task whose stop was requested before the call throws cancelled and never calls f") {
  std::atomic<bool> called{false};
  std::atomic<bool> task_cancelled{false};
  fu::Group g;
  g.cancel();  // applies to tasks spawned until join() returns
  g.spawn([&] {
    try {
      fu::run_blocking([&] { called = true; });
    } catch (const fu::cancelled&) {
      task_cancelled = true;
      throw;
    }
  });
  g.join();
  CHECK(task_cancelled);
  CHECK_FALSE(called);
}

TEST_CASE("plain threads call run_blocking concurrently, and their own tasks keep running") {
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&ok, t] {
      // The call waits until a task of its caller's thread has ticked: that thread must not be
      // blocked by it.
      std::atomic<int> ticks{0};
      fu::Group g;
      g.spawn([&] {
        for (int i = 0; i < 3; ++i) {
          fu::this_task::sleep_for(1ms);
          ++ticks;
        }
      });
      const int r = fu::run_blocking(
          [&ticks](int x) {
            const auto until = Clock::now() + 10s;
            while (ticks < 3 && Clock::now() < until)
              std::this_thread::yield();
            return ticks == 3 ? x * 2 : -1;
          },
          t);
      g.join();
      if (r == t * 2)
        ++ok;
    });
  for (auto& th : threads)
    th.join();
  CHECK(ok.load() == kThreads);
}

TEST_CASE("once warm, a thousand calls in sequence run on a handful of pool threads") {
  const long n = test_support::scaled(1000);
  std::set<std::thread::id> ids;
  for (long i = 0; i < n; ++i)
    ids.insert(fu::run_blocking([] { return std::this_thread::get_id(); }));
  INFO("distinct pool threads: " << ids.size());
  // One thread per call would give n; the hand-off to the most recently idle thread reuses one
  // or two (a third when the caller is faster than the thread going back to idle).
  CHECK(ids.size() <= 8);
}

TEST_CASE("a stream's tasks call run_blocking and their values all arrive") {
  fu::Yielder<int> y(4);
  for (int i = 0; i < 20; ++i)
    y.spawn([](int i) { return fu::run_blocking([](int v) { return v * v; }, i); }, i);
  long sum = 0;
  int count = 0;
  for (int v : y) {
    sum += v;
    ++count;
  }
  CHECK(count == 20);
  CHECK(sum == 2470);  // 0^2 + ... + 19^2
}

TEST_CASE("leaving a stream early stops its tasks waiting in run_blocking at once") {
  std::counting_semaphore<> let_calls_end{0};
  std::atomic<int> calls_ended{0};
  fu::Semaphore calls_started(0);
  {
    auto s = fu::yielding<int>([&](fu::Yielder<int>& y) {
      y.put(1);
      for (int i = 0; i < 3; ++i)
        y.spawn([&] {
          return fu::run_blocking([&] {
            calls_started.release();
            (void)let_calls_end.try_acquire_for(10s);
            ++calls_ended;
            return 2;
          });
        });
    });
    for (int v : s) {
      CHECK(v == 1);
      for (int i = 0; i < 3; ++i)
        calls_started.acquire();  // every task waits in its call
      break;                      // the stream's destructor stops its tasks and waits for them
    }
  }
  CHECK(calls_ended.load() == 0);  // the stream was left while the calls still ran
  let_calls_end.release(3);
  const auto until = Clock::now() + 10s;
  while (calls_ended.load() < 3 && Clock::now() < until)
    std::this_thread::yield();
  CHECK(calls_ended.load() == 3);
}

TEST_CASE("set_blocking_threads rejects 0, and any call after the first run_blocking") {
  CHECK_THROWS_AS(fu::set_blocking_threads(0), std::invalid_argument);
  (void)fu::run_blocking([] { return 0; });
  CHECK_THROWS_WITH_AS(fu::set_blocking_threads(4),
                       doctest::Contains("after the first run_blocking"), std::logic_error);
}
