// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/this_task.hpp>

#include <boost/fiber/operations.hpp>

#include <fiberutils/detail/deadline_scope.hpp>
#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "fiber_state.hpp"

namespace fiberutils::this_task {

// Inside a deadline scope, the scope's own token (made on first use), which also stops at the
// scope's deadline; else the task's.
std::stop_token stop_token() noexcept {
  detail::FiberState* s = detail::fiber_state();
  if (!s) return {};
  if (s->scope) {
    try {
      return s->scope->token();
    } catch (...) {  // out of memory for the scope's stop state: the task's token still works
    }
  }
  return s->current ? s->current->group_->task_token() : std::stop_token{};
}

}  // namespace fiberutils::this_task

namespace fiberutils::detail {

bool stop_requested_slow() noexcept {
  FiberState* s = fiber_state();
  if (!s) return false;
  if (s->current && s->current->group_->task_stop_requested()) return true;
  return s->scope && s->scope->chain_stopped();
}

}  // namespace fiberutils::detail

namespace fiberutils::this_task {

// A sleep is a park that nobody else knows of: only a stop or the deadline ends it. It does not
// go through a condition variable: Boost.Fiber's spinlock puts a ~5 KB frame on the stack of
// every fiber that waits on one (FACTS.md), a second resident page for each sleeping task.
void sleep_until(std::chrono::steady_clock::time_point tp) {
  const detail::StopCondition stop = detail::current_stop();
  if (stop.stop_requested()) throw cancelled{};
  detail::Park p(detail::WaitKind::sleep, stop.waiter());
  if (p.wait(stop, tp) == detail::ParkStatus::stopped) throw cancelled{};
}

void yield() {
  if (stop_requested()) throw cancelled{};
  boost::this_fiber::yield();
  if (stop_requested()) throw cancelled{};
}

}  // namespace fiberutils::this_task
