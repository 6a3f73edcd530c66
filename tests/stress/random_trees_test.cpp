// SPDX-License-Identifier: Apache-2.0
//
// Random trees of nested spawns with random sleeps, exceptions and cancels: every task is
// accounted for exactly once, join() rethrows the first exception thrown, and the group is empty
// and reusable after each round. Replay a failure with FIBERUTILS_SEED=<the printed seed>.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>

#include <fiberutils/fiberutils.hpp>

#include "stress_common.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {

struct TaskError {
  long id;
};

struct Counters {
  long spawned = 0, finished = 0, failed = 0, cancelled = 0;
  std::optional<long> first_thrower;
};

void node(fu::Group& g, Counters& c, std::uint64_t seed, int depth, long id);

void spawn_node(fu::Group& g, Counters& c, std::uint64_t seed, int depth, long id) {
  ++c.spawned;
  g.spawn(node, std::ref(g), std::ref(c), seed, depth, id);
}

void node(fu::Group& g, Counters& c, std::uint64_t seed, int depth, long id) {
  std::mt19937_64 rng(seed);
  try {
    switch (rng() % 4) {
      case 0: fu::this_task::sleep_for(std::chrono::microseconds(rng() % 2000)); break;
      case 1: fu::this_task::yield(); break;
      default: break;  // no cancellation point: runs to its end even after a cancel
    }
    const int children = depth < 4 ? static_cast<int>(rng() % 5) : 0;
    for (int i = 0; i < children; ++i)
      spawn_node(g, c, stress::mix(seed + static_cast<std::uint64_t>(i)), depth + 1, id * 5 + i + 1);
    if (rng() % 50 == 0) {
      ++c.failed;
      if (!c.first_thrower) c.first_thrower = id;  // tasks of one thread: no race
      throw TaskError{id};
    }
    if (rng() % 3 == 0) fu::this_task::yield();
    ++c.finished;
  } catch (const fu::cancelled&) {
    ++c.cancelled;
    throw;
  }
}

}  // namespace

TEST_CASE("random trees of nested spawns: each task accounted once, the first exception rethrown") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  const long rounds = stress::scaled(400);
  long total_tasks = 0;
  fu::Group g;  // one group for every round: it must be reusable after each join
  for (long round = 0; round < rounds; ++round) {
    CAPTURE(round);
    const std::uint64_t round_seed = stress::mix(seed ^ static_cast<std::uint64_t>(round));
    std::mt19937_64 rng(round_seed);
    Counters c;
    const int roots = 1 + static_cast<int>(rng() % 20);
    for (int r = 0; r < roots; ++r) spawn_node(g, c, stress::mix(round_seed + r), 0, r);
    if (rng() % 3 == 0) {
      const auto after = std::chrono::microseconds(rng() % 3000);
      g.spawn([&g, after] {  // not counted: it only cancels
        fu::this_task::sleep_for(after);
        g.cancel();
      });
    }
    std::optional<long> rethrown;
    try {
      g.join();
    } catch (const TaskError& e) {
      rethrown = e.id;
    }
    CHECK(c.finished + c.failed + c.cancelled == c.spawned);
    CHECK(rethrown == c.first_thrower);
    CHECK(g.size() == 0);
    total_tasks += c.spawned;
  }
  MESSAGE("random trees: " << total_tasks << " tasks in " << rounds << " rounds, seed " << seed);
}
