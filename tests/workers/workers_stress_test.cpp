// SPDX-License-Identifier: Apache-2.0
//
// The stress suite's random trees (stress::trees::random_trees() in tests/stress/stress_common.hpp,
// which tests/stress/random_trees_test.cpp runs on one thread) under a fu::Workers: nested spawns
// with random sleeps, yields, exceptions, cancels, Pools and nested groups joined from tasks, on
// three threads that share the tasks. Every task is accounted for exactly once, join() rethrows
// one of the exceptions thrown (with several threads, "first" is decided by whichever reaches
// the group first, not by our clocks), no task changes thread across its waits, and afterwards
// nothing runs, size() is 0 and every group is reusable.
// Replay a failure with --seed=<the printed seed> (or FIBERUTILS_SEED).
#include <doctest/doctest.h>

#include <cstdint>

#include "../stress/stress_common.hpp"

TEST_CASE("random trees under Workers(3): each task accounted once, a thrown exception rethrown, no task moved") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  const stress::trees::Totals t = stress::trees::random_trees(seed, /*workers=*/3);
  MESSAGE("random trees under Workers(3): " << t.tasks << " tasks in " << t.rounds << " rounds ("
          << t.rethrown_rounds << " rethrew, " << t.cancelled_tasks << " tasks cancelled) on "
          << t.threads.size() << " thread(s), seed " << seed);
}
