// SPDX-License-Identifier: Apache-2.0
//
// Random trees of nested spawns with random sleeps, yields, exceptions, cancels and nested
// groups that a task joins, all on the test's thread: every task is accounted for exactly once,
// join() rethrows the first exception thrown, and afterwards nothing runs, size() is 0 and the
// group is reusable. The tree is stress::trees::random_trees() (stress_common.hpp), which
// workers_stress_test runs under a fu::Workers.
// Replay a failure with --seed=<the printed seed> (or FIBERUTILS_SEED).
#include <doctest/doctest.h>

#include <cstdint>

#include "stress_common.hpp"

TEST_CASE("random trees of nested spawns: each task accounted once, the first exception rethrown") {
  const std::uint64_t seed = stress::seed();
  CAPTURE(seed);
  const stress::trees::Totals t = stress::trees::random_trees(seed, /*workers=*/0);
  CHECK(t.threads.size() <= 1);  // no Workers: every task ran on this thread
  // Not a check: idle runners keep their stacks for the next burst, so `live` need not return
  // to its starting value; `running == 0` in every round is what shows that no task is left
  // running.
  MESSAGE("random trees: " << t.tasks << " tasks in " << t.rounds << " rounds (" << t.rethrown_rounds
          << " rethrew, " << t.cancelled_tasks << " tasks cancelled), seed " << seed
          << "; stacks live after: " << t.stacks_after.live << ", peak " << t.stacks_after.peak_live);
}
