// SPDX-License-Identifier: Apache-2.0
//
// The stress suite's random trees (tests/stress/random_trees_test.cpp) under a fu::Workers: nested
// spawns with random sleeps, yields, exceptions, cancels, Pools and nested groups joined from
// tasks, on three threads that share the tasks. Every task is accounted for exactly once, join()
// rethrows one of the exceptions thrown (with several threads, "first" is decided by whichever
// reaches the group first, not by our clocks), no task changes thread across its waits, and
// afterwards nothing runs, size() is 0 and every group is reusable.
// Replay a failure with --seed=<the printed seed> (or FIBERUTILS_SEED).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fiberutils/fiberutils.hpp>

#include "../stress/stress_common.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {

struct TaskError {
  long id;
};

// Every task of one round, in whichever group and on whichever thread it ran.
struct Counters {
  std::atomic<long> spawned{0}, finished{0}, failed{0}, cancelled{0}, moved{0};
  std::atomic<long> running{0};  // task bodies entered and not yet left
  std::mutex m;
  std::set<long> throwers;  // ids of the round's top-group tasks that threw
  std::set<std::thread::id> threads;
};

struct Running {
  std::atomic<long>& n;
  explicit Running(std::atomic<long>& c) : n(c) { ++n; }
  ~Running() { --n; }
};

void node(fu::Group& g, Counters& c, std::set<long>* throwers, std::uint64_t seed, int depth,
          long id);

void spawn_node(fu::Group& g, Counters& c, std::set<long>* throwers, std::uint64_t seed, int depth,
                long id) {
  g.spawn(node, std::ref(g), std::ref(c), throwers, seed, depth, id);
  ++c.spawned;  // after spawn() returned: a spawn that threw would not count
}

[[noreturn]] void fail(Counters& c, std::set<long>* throwers, long id) {
  ++c.failed;
  {
    std::lock_guard<std::mutex> lk(c.m);
    throwers->insert(id);
  }
  throw TaskError{id};
}

void node(fu::Group& g, Counters& c, std::set<long>* throwers, std::uint64_t seed, int depth,
          long id) {
  Running running(c.running);
  const auto me = std::this_thread::get_id();
  {
    std::lock_guard<std::mutex> lk(c.m);
    c.threads.insert(me);
  }
  auto same_thread = [&] {
    if (std::this_thread::get_id() != me) ++c.moved;
  };
  std::mt19937_64 rng(seed);
  try {
    switch (rng() % 4) {
      case 0: fu::this_task::sleep_for(std::chrono::microseconds(rng() % 800)); break;
      case 1: fu::this_task::yield(); break;
      default: break;  // no cancellation point: runs to its end even after a cancel
    }
    same_thread();
    const int children = depth < 4 ? static_cast<int>(rng() % 5) : 0;
    for (int i = 0; i < children; ++i)
      spawn_node(g, c, throwers, stress::mix(seed + static_cast<std::uint64_t>(i)), depth + 1,
                 id * 5 + i + 1);
    if (depth < 3 && rng() % 10 == 0) {
      // A group of its own, joined here; what its tasks refer to is declared before it.
      std::set<long> nested_throwers;
      fu::Group nested;
      const int nested_children = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < nested_children; ++i)
        spawn_node(nested, c, &nested_throwers, stress::mix(~seed + static_cast<std::uint64_t>(i)),
                   depth + 1, -(id * 8 + i + 1));
      try {
        nested.join();
      } catch (const TaskError& e) {
        std::lock_guard<std::mutex> lk(c.m);
        CHECK(nested_throwers.count(e.id) == 1);
      }
      same_thread();
    }
    if (rng() % 200 == 0) g.cancel();
    if (rng() % 150 == 0) fail(c, throwers, id);
    if (rng() % 3 == 0) fu::this_task::yield();
    same_thread();
    ++c.finished;
  } catch (const fu::cancelled&) {
    ++c.cancelled;
    throw;
  }
}

}  // namespace

TEST_CASE("random trees under Workers(3): each task accounted once, a thrown exception rethrown, no task moved") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  const long max_rounds = stress::scaled(400);
  const stress::Budget budget(3s);
  long total_tasks = 0, rounds = 0, rethrown_rounds = 0, cancelled_tasks = 0;
  std::set<std::thread::id> threads;
  fu::Group group;  // made before the Workers: its tasks are shared all the same
  fu::Workers workers(3);
  fu::Pool pool1(1), pool2(2), pool64(64);
  fu::Group* const groups[] = {&group, &pool1, &pool2, &pool64};
  for (; rounds < max_rounds && !budget.spent(); ++rounds) {
    CAPTURE(rounds);
    const std::uint64_t round_seed = stress::mix(seed ^ static_cast<std::uint64_t>(rounds));
    std::mt19937_64 rng(round_seed);
    fu::Group& g = *groups[rng() % 4];
    Counters c;
    const int roots = 1 + static_cast<int>(rng() % 20);
    for (int r = 0; r < roots; ++r) spawn_node(g, c, &c.throwers, stress::mix(round_seed + r), 0, r);
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
    CHECK(c.running == 0);
    CHECK(c.moved == 0);
    CHECK(g.size() == 0);
    {
      std::lock_guard<std::mutex> lk(c.m);
      if (rethrown) CHECK(c.throwers.count(*rethrown) == 1);
      else CHECK(c.throwers.empty());
      threads.insert(c.threads.begin(), c.threads.end());
    }
    total_tasks += c.spawned;
    cancelled_tasks += c.cancelled;
    rethrown_rounds += rethrown.has_value();
  }
  for (fu::Group* g : groups) CHECK(g->size() == 0);
  MESSAGE("random trees under Workers(3): " << total_tasks << " tasks in " << rounds << " rounds ("
          << rethrown_rounds << " rethrew, " << cancelled_tasks << " tasks cancelled) on "
          << threads.size() << " thread(s), seed " << seed);
}
