// SPDX-License-Identifier: Apache-2.0
//
// Random trees of nested spawns with random sleeps, yields, exceptions, cancels and nested
// groups that a task joins: every task is accounted for exactly once, join() rethrows the first
// exception thrown, and afterwards nothing runs, size() is 0 and the group is reusable.
// Replay a failure with --seed=<the printed seed> (or FIBERUTILS_SEED).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
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

// Every task of one round, in whichever group it ran. All tasks run on the test's thread, so
// plain counters are exact.
struct Counters {
  long spawned = 0, finished = 0, failed = 0, cancelled = 0;
  long running = 0;  // task bodies entered and not yet left
  std::optional<long> first_thrower;  // first task of the round's top group to throw, in time
};

struct Running {
  long& n;
  explicit Running(long& c) : n(c) { ++n; }
  ~Running() { --n; }
};

void node(fu::Group& g, Counters& c, std::optional<long>& first_thrower, std::uint64_t seed,
          int depth, long id);

void spawn_node(fu::Group& g, Counters& c, std::optional<long>& first_thrower, std::uint64_t seed,
                int depth, long id) {
  g.spawn(node, std::ref(g), std::ref(c), std::ref(first_thrower), seed, depth, id);
  ++c.spawned;  // after spawn() returned: a spawn that threw would not count
}

// Throws TaskError{id}, remembering it when it is the first thrower of its group.
[[noreturn]] void fail(Counters& c, std::optional<long>& first_thrower, long id) {
  ++c.failed;
  if (!first_thrower) first_thrower = id;
  throw TaskError{id};
}

void node(fu::Group& g, Counters& c, std::optional<long>& first_thrower, std::uint64_t seed,
          int depth, long id) {
  Running running(c.running);
  std::mt19937_64 rng(seed);
  try {
    switch (rng() % 4) {
      case 0: fu::this_task::sleep_for(std::chrono::microseconds(rng() % 800)); break;
      case 1: fu::this_task::yield(); break;
      default: break;  // no cancellation point: runs to its end even after a cancel
    }
    const int children = depth < 4 ? static_cast<int>(rng() % 5) : 0;
    for (int i = 0; i < children; ++i)
      spawn_node(g, c, first_thrower, stress::mix(seed + static_cast<std::uint64_t>(i)), depth + 1,
                 id * 5 + i + 1);
    if (depth < 3 && rng() % 10 == 0) {
      // A group of its own, joined here: its first exception becomes this task's failure; a
      // cancel of this task while it joins leaves the nested group to its destructor, which
      // waits for the nested tasks: what they refer to is declared before the group, so it is
      // destroyed after it.
      std::optional<long> nested_first;
      fu::Group nested;
      const int nested_children = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < nested_children; ++i)
        spawn_node(nested, c, nested_first, stress::mix(~seed + static_cast<std::uint64_t>(i)),
                   depth + 1, -(id * 8 + i + 1));
      try {
        nested.join();
      } catch (const TaskError& e) {
        CHECK(nested_first);
        CHECK(e.id == nested_first.value_or(0));
        fail(c, first_thrower, id);
      }
      CHECK_FALSE(nested_first);
    }
    if (rng() % 200 == 0) g.cancel();
    if (rng() % 150 == 0) fail(c, first_thrower, id);
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
  const long max_rounds = stress::scaled(400);
  const stress::Budget budget(3s);
  long total_tasks = 0, rounds = 0, rethrown_rounds = 0, cancelled_tasks = 0;
  // One group and pools of each limit for every round: they must be reusable after each join.
  fu::Group group;
  fu::Pool pool1(1), pool2(2), pool64(64);
  fu::Group* const groups[] = {&group, &pool1, &pool2, &pool64};
  for (; rounds < max_rounds && !budget.spent(); ++rounds) {
    CAPTURE(rounds);
    const std::uint64_t round_seed = stress::mix(seed ^ static_cast<std::uint64_t>(rounds));
    std::mt19937_64 rng(round_seed);
    fu::Group& g = *groups[rng() % 4];
    Counters c;
    const int roots = 1 + static_cast<int>(rng() % 20);
    for (int r = 0; r < roots; ++r) spawn_node(g, c, c.first_thrower, stress::mix(round_seed + r), 0, r);
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
    CHECK(c.running == 0);
    CHECK(g.size() == 0);
    total_tasks += c.spawned;
    cancelled_tasks += c.cancelled;
    rethrown_rounds += rethrown.has_value();
  }
  for (fu::Group* g : groups) CHECK(g->size() == 0);
  // Not a check: idle runners keep their stacks for the next burst, so `live` need not return
  // to its starting value; `running == 0` above is what shows that no task is left running.
  const fu::StackStats after = fu::stack_stats();
  MESSAGE("random trees: " << total_tasks << " tasks in " << rounds << " rounds (" << rethrown_rounds
          << " rethrew, " << cancelled_tasks << " tasks cancelled), seed " << seed
          << "; stacks live after: " << after.live << ", peak " << after.peak_live);
}
