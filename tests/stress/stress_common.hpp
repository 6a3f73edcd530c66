// SPDX-License-Identifier: Apache-2.0
//
// Seeds, sizes and deadlines for the stress suite. The seed comes from `--seed=N` on the command
// line or FIBERUTILS_SEED (to replay a failure), else from std::random_device; stress_main.cpp
// prints it first and every test CAPTUREs it, so a failure always shows the seed.
// FIBERUTILS_TEST_SCALE divides sizes for slow configurations (sanitizers, valgrind).
// random_trees() is the random tree of nested spawns that random_trees_test runs on one thread
// and workers_stress_test runs under a fu::Workers.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <fiberutils/fiberutils.hpp>

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

// Random trees of nested spawns with random sleeps, yields, exceptions, cancels and nested groups
// that a task joins, in rounds over one Group and Pools of limits 1, 2 and 64 (reused after every
// join), up to scaled(400) rounds or 3 s. Every round checks that every task is accounted for
// exactly once, that join() rethrew a thrown exception (on one thread: the first one thrown),
// that no task changed thread across its waits, that nothing runs afterwards and that size() is 0.
namespace trees {

namespace fu = fiberutils;

struct TaskError {
  long id;
};

// Every task of one round, in whichever group and on whichever thread it ran.
struct Counters {
  std::atomic<long> spawned{0}, finished{0}, failed{0}, cancelled{0}, moved{0};
  std::atomic<long> running{0};  // task bodies entered and not yet left
  std::mutex m;
  std::set<std::thread::id> threads;
};

// The tasks of one group that threw, in the order they threw (on one thread that is the order in
// time; with several, the order they took the mutex). Guarded by Counters::m.
using Throwers = std::vector<long>;

inline bool threw(const Throwers& t, long id) { return std::find(t.begin(), t.end(), id) != t.end(); }

struct Running {
  std::atomic<long>& n;
  explicit Running(std::atomic<long>& c) : n(c) { ++n; }
  ~Running() { --n; }
};

struct Tree {
  Counters& c;
  bool one_thread;  // join() must rethrow exactly the first exception thrown

  void spawn(fu::Group& g, Throwers* throwers, std::uint64_t seed, int depth, long id) {
    g.spawn([this, &g, throwers, seed, depth, id] { node(g, throwers, seed, depth, id); });
    ++c.spawned;  // after spawn() returned: a spawn that threw would not count
  }

  // The exception join() rethrew, checked against the group's throwers.
  void check_rethrown(const std::optional<long>& rethrown, const Throwers& throwers) {
    std::lock_guard<std::mutex> lk(c.m);
    const std::optional<long> first =
        throwers.empty() ? std::nullopt : std::optional<long>(throwers.front());
    if (one_thread) CHECK(rethrown == first);
    else if (rethrown) CHECK(threw(throwers, *rethrown));
    else CHECK(throwers.empty());
  }

  [[noreturn]] void fail(Throwers* throwers, long id) {
    ++c.failed;
    {
      std::lock_guard<std::mutex> lk(c.m);
      throwers->push_back(id);
    }
    throw TaskError{id};
  }

  void node(fu::Group& g, Throwers* throwers, std::uint64_t seed, int depth, long id) {
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
        spawn(g, throwers, mix(seed + static_cast<std::uint64_t>(i)), depth + 1, id * 5 + i + 1);
      if (depth < 3 && rng() % 10 == 0) {
        // A group of its own, joined here: its exception becomes this task's failure; a cancel of
        // this task while it joins leaves the nested group to its destructor, which waits for the
        // nested tasks: what they refer to is declared before the group, so it is destroyed
        // after it.
        Throwers nested_throwers;
        fu::Group nested;
        const int nested_children = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < nested_children; ++i)
          spawn(nested, &nested_throwers, mix(~seed + static_cast<std::uint64_t>(i)), depth + 1,
                -(id * 8 + i + 1));
        std::optional<long> rethrown;
        try {
          nested.join();
        } catch (const TaskError& e) {
          rethrown = e.id;
        }
        same_thread();
        check_rethrown(rethrown, nested_throwers);
        if (rethrown) fail(throwers, id);
      }
      if (rng() % 200 == 0) g.cancel();
      if (rng() % 150 == 0) fail(throwers, id);
      if (rng() % 3 == 0) fu::this_task::yield();
      same_thread();
      ++c.finished;
    } catch (const fu::cancelled&) {
      ++c.cancelled;
      throw;
    }
  }
};

struct Totals {
  long tasks = 0, rounds = 0, rethrown_rounds = 0, cancelled_tasks = 0;
  std::set<std::thread::id> threads;  // every thread a task ran on
  fu::StackStats stacks_after{};      // taken before the groups are destroyed
};

// workers == 0: every task runs on the calling thread. workers == n: under a fu::Workers(n),
// made after the Group and before the Pools, so a group created before the Workers is covered.
inline Totals random_trees(std::uint64_t seed, unsigned workers) {
  const long max_rounds = scaled(400);
  const Budget budget(std::chrono::seconds(3));
  Totals totals;
  fu::Group group;
  std::optional<fu::Workers> shared;
  if (workers) shared.emplace(workers);
  fu::Pool pool1(1), pool2(2), pool64(64);
  fu::Group* const groups[] = {&group, &pool1, &pool2, &pool64};
  for (long& rounds = totals.rounds; rounds < max_rounds && !budget.spent(); ++rounds) {
    CAPTURE(rounds);
    const std::uint64_t round_seed = mix(seed ^ static_cast<std::uint64_t>(rounds));
    std::mt19937_64 rng(round_seed);
    fu::Group& g = *groups[rng() % 4];
    Counters c;
    Tree tree{c, workers == 0};
    Throwers throwers;
    const int roots = 1 + static_cast<int>(rng() % 20);
    for (int r = 0; r < roots; ++r) tree.spawn(g, &throwers, mix(round_seed + r), 0, r);
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
    tree.check_rethrown(rethrown, throwers);
    {
      std::lock_guard<std::mutex> lk(c.m);
      totals.threads.insert(c.threads.begin(), c.threads.end());
    }
    totals.tasks += c.spawned;
    totals.cancelled_tasks += c.cancelled;
    totals.rethrown_rounds += rethrown.has_value();
  }
  for (fu::Group* g : groups) CHECK(g->size() == 0);
  totals.stacks_after = fu::stack_stats();
  return totals;
}

}  // namespace trees

}  // namespace stress
