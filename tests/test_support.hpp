// SPDX-License-Identifier: Apache-2.0
//
// Helpers shared by the test suites: sizes that slow configurations shrink, a high-water mark,
// a value type that counts its live instances, a task body that sleeps until cancelled, and
// threads that loop a round for a while.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

namespace test_support {

// n divided by FIBERUTILS_TEST_SCALE (default 1): sanitizer and valgrind runs shrink big runs.
inline long scaled(long n) {
  const char* env = std::getenv("FIBERUTILS_TEST_SCALE");
  return std::max(1L, n / std::max(1L, env ? std::atol(env) : 1L));
}

// The most tasks inside a section at once; usable from tasks of several threads.
struct HighWater {
  std::atomic<int> now{0}, most{0};
  void enter() {
    const int n = ++now;
    int seen = most.load();
    while (n > seen && !most.compare_exchange_weak(seen, n)) {}
  }
  void leave() { --now; }
};

// A value that counts its live instances, so a test can show that none leaks or is lost.
struct Counted {
  static inline std::atomic<long> live{0};
  long v;
  explicit Counted(long x) : v(x) { ++live; }
  Counted(const Counted& o) : v(o.v) { ++live; }
  Counted(Counted&& o) noexcept : v(o.v) { ++live; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) noexcept = default;
  ~Counted() { --live; }
};

// A task body that sleeps for an hour unless its task is cancelled: it counts itself in *asleep
// (when given) as it falls asleep and in `stopped` when the cancel wakes it, then lets
// fiberutils::cancelled through. Wrap it to return a value: [s = ...] { s(); return 1; }.
inline auto sleep_an_hour_unless_cancelled(std::atomic<int>& stopped,
                                           std::atomic<int>* asleep = nullptr) {
  return [&stopped, asleep] {
    if (asleep) ++*asleep;
    try {
      fiberutils::this_task::sleep_for(std::chrono::hours(1));
    } catch (const fiberutils::cancelled&) {
      ++stopped;
      throw;
    }
  };
}

// Runs round() over and over on each of `threads` threads until `time` has passed and each
// thread has run it at least `min_rounds` times.
template <class Round>
void on_threads_for_a_while(int threads, std::chrono::milliseconds time, long min_rounds,
                            Round round) {
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&] {
      const auto until = std::chrono::steady_clock::now() + time;
      for (long rounds = 0; std::chrono::steady_clock::now() < until || rounds < min_rounds; ++rounds)
        round();
    });
  for (auto& t : running) t.join();
}

}  // namespace test_support
