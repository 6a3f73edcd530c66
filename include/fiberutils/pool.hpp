// SPDX-License-Identifier: Apache-2.0
//
// fu::Pool: a Group that runs at most `limit` task bodies at once, started in FIFO order.
//
// A task spawned while all slots are taken waits as a queued callable (no fiber, no stack) and
// starts when a slot frees up. spawn() never blocks and never deadlocks, also when a running
// task spawns into its own full pool. The limit is a fu::Semaphore of `limit` permits.
//
// - Suspends: join(), join_for(), join_until(), wait_available() (cancellation points inside a
//   task). Never suspends: spawn(), cancel(), size(), free_count(), limit().
// - Thread-safe: every member, from any thread and any fiber. A queued task starts on the
//   thread where the slot it takes was freed (the thread that spawned it, unless several
//   threads spawn into the same pool; under a fu::Workers, any of its threads). The limit holds
//   across threads.
// - Destructor: as Group's: requests stop and suspends until every task, queued ones
//   included, has finished. Queued tasks still run; they see the stop at their first
//   cancellation point.
//
// Example (at most 2 downloads at once):
//   fu::Pool p(2);
//   for (auto& url : urls) p.spawn(download, url);
//   p.join();
#pragma once

#include <cstddef>

#include <fiberutils/group.hpp>
#include <fiberutils/semaphore.hpp>

namespace fiberutils {

class Pool : public Group {
 public:
  // Pool(n) runs at most n task bodies at once. Throws std::invalid_argument when n < 1.
  explicit Pool(std::ptrdiff_t limit) : Pool(limit, default_stack_size()) {}
  Pool(std::ptrdiff_t limit, StackSize stack)
      : Group(stack, detail::checked_limit(limit, "fiberutils::Pool"), false) {}
  // Pool(n, fu::fail_fast): the first exception stops the other tasks, queued ones never start.
  Pool(std::ptrdiff_t limit, fail_fast_t, StackSize stack = default_stack_size())
      : Group(stack, detail::checked_limit(limit, "fiberutils::Pool"), true) {}

  // wait_available() suspends the calling fiber until a slot is free (backpressure for a
  // producer that should not queue far ahead). It does not reserve the slot. Cancellation point.
  void wait_available() { group_.wait_for_slot(); }

  // free_count() is the number of free slots at the time of the call; limit() is n.
  std::size_t free_count() const noexcept { return group_.free_slots(); }
  std::size_t limit() const noexcept { return group_.limit(); }
};

}  // namespace fiberutils
