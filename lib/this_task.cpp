// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/this_task.hpp>

#include <boost/fiber/operations.hpp>

#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>

namespace fiberutils::this_task {

std::stop_token stop_token() noexcept { return detail::current_stop_token(); }

bool stop_requested() noexcept {
  detail::TaskBase* t = detail::current_task();
  return t && t->group_->task_stop_requested();
}

// A sleep is a park that nobody else knows of: only a stop or the deadline ends it. It does not
// go through a condition variable: Boost.Fiber's spinlock puts a ~5 KB frame on the stack of
// every fiber that waits on one (FACTS.md), a second resident page for each sleeping task.
void sleep_until(std::chrono::steady_clock::time_point tp) {
  const std::stop_token stop = detail::current_stop_token();
  if (stop.stop_requested()) throw cancelled{};
  detail::Park p(detail::WaitKind::sleep);
  if (p.wait(stop, tp) == detail::ParkStatus::stopped) throw cancelled{};
}

void yield() {
  if (stop_requested()) throw cancelled{};
  boost::this_fiber::yield();
  if (stop_requested()) throw cancelled{};
}

}  // namespace fiberutils::this_task
