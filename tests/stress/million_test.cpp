// SPDX-License-Identifier: Apache-2.0
//
// 1,000,000 tasks through each of Group, Pool(64), Yielder(64) and OrderedYielder(64), spawned
// before anything runs, with their results checked (FIBERUTILS_TEST_SCALE shrinks the count).
// The ordered stream's tasks yield a seeded number of times, so they finish out of order.
#include <doctest/doctest.h>

#include <fiberutils/fiberutils.hpp>

#include "stress_common.hpp"

namespace fu = fiberutils;

namespace {
const long kTasks = stress::scaled(1'000'000);
const long kExpectedSum = kTasks * (kTasks - 1) / 2;
}  // namespace

TEST_CASE("1,000,000 tasks through a Group add up") {
  long sum = 0;
  fu::Group g;
  for (long i = 0; i < kTasks; ++i) g.spawn([&sum](long i) { sum += i; }, i);
  g.join();
  CHECK(sum == kExpectedSum);
}

TEST_CASE("1,000,000 tasks through Pool(64) add up, never more than 64 at once") {
  long sum = 0;
  int running = 0, high_water = 0;
  fu::Pool p(64);
  for (long i = 0; i < kTasks; ++i) {
    p.spawn([&](long i) {
      high_water = std::max(high_water, ++running);
      fu::this_task::yield();
      --running;
      sum += i;
    }, i);
  }
  p.join();
  CHECK(sum == kExpectedSum);
  CHECK(high_water <= 64);
  CHECK(high_water > 1);
}

TEST_CASE("1,000,000 results through Yielder(64) add up") {
  fu::Yielder<long> y(64);
  for (long i = 0; i < kTasks; ++i) y.spawn([](long i) { return i; }, i);
  long sum = 0, count = 0;
  for (long v : y) {
    sum += v;
    ++count;
  }
  CHECK(count == kTasks);
  CHECK(sum == kExpectedSum);
}

TEST_CASE("1,000,000 results through OrderedYielder(64) come in spawn order") {
  // Each task yields 0-3 times (seeded), so they finish out of spawn order: tasks that never
  // suspended would finish in spawn order, and a plain Yielder would pass the check too.
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  fu::OrderedYielder<long> y(64);
  for (long i = 0; i < kTasks; ++i)
    y.spawn([](long i, int yields) {
      for (int k = 0; k < yields; ++k) fu::this_task::yield();
      return i;
    }, i, static_cast<int>(stress::mix(seed + static_cast<std::uint64_t>(i)) % 4));
  long expected = 0;
  bool in_order = true;
  for (long v : y) in_order = in_order && v == expected++;
  CHECK(in_order);
  CHECK(expected == kTasks);
}
