// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the stream tests.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace stream_tests {

inline long scaled(long n) {
  const char* env = std::getenv("FIBERUTILS_TEST_SCALE");
  return std::max(1L, n / std::max(1L, env ? std::atol(env) : 1L));
}

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

struct HighWater {
  std::atomic<int> now{0}, most{0};
  void enter() {
    int n = ++now;
    int seen = most.load();
    while (n > seen && !most.compare_exchange_weak(seen, n)) {}
  }
  void leave() { --now; }
};

}  // namespace stream_tests
