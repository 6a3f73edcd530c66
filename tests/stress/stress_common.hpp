// SPDX-License-Identifier: Apache-2.0
//
// Seeds, sizes and deadlines for the stress suite. The seed comes from `--seed=N` on the command
// line or FIBERUTILS_SEED (to replay a failure), else from std::random_device; stress_main.cpp
// prints it first and every test CAPTUREs it, so a failure always shows the seed.
// FIBERUTILS_TEST_SCALE divides sizes for slow configurations (sanitizers, valgrind).
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <optional>
#include <random>

#include "../test_support.hpp"

namespace stress {

// Set by stress_main.cpp from `--seed=N` before any test runs.
inline std::optional<std::uint64_t> command_line_seed;

inline std::uint64_t seed() {
  static const std::uint64_t s = []() -> std::uint64_t {
    if (command_line_seed) return *command_line_seed;
    if (const char* env = std::getenv("FIBERUTILS_SEED")) return std::strtoull(env, nullptr, 0);
    return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  }();
  return s;
}

using test_support::scaled;

// A time budget for a randomised loop: the rounds stop early when it runs out, so a slow
// configuration (sanitizers, valgrind, a busy machine) stays bounded in time as well as in
// iterations. Each round's seed depends only on the seed and the round number, so a replay of
// the same seed repeats the same rounds in the same order.
class Budget {
 public:
  explicit Budget(std::chrono::milliseconds limit) : end_(std::chrono::steady_clock::now() + limit) {}
  bool spent() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

// splitmix64: derives independent seeds for tasks from one number, so a replay is exact whatever
// order the tasks run in.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace stress
