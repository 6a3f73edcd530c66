// SPDX-License-Identifier: Apache-2.0
//
// Seeds and sizes for the stress suite. The seed comes from FIBERUTILS_SEED when set (to replay a
// failure), else from std::random_device; every test CAPTUREs it, so a failure prints the seed.
// FIBERUTILS_TEST_SCALE divides sizes for slow configurations (sanitizers, valgrind).
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <random>

#include "../test_support.hpp"

namespace stress {

inline std::uint64_t seed() {
  static const std::uint64_t s = []() -> std::uint64_t {
    if (const char* env = std::getenv("FIBERUTILS_SEED")) return std::strtoull(env, nullptr, 0);
    return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  }();
  return s;
}

using test_support::scaled;

// splitmix64: derives independent seeds for tasks from one number, so a replay is exact whatever
// order the tasks run in.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace stress
