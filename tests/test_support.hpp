// SPDX-License-Identifier: Apache-2.0
//
// Helpers shared by the test suites: sizes that slow configurations shrink, a high-water mark,
// and a value type that counts its live instances.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>

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

}  // namespace test_support
