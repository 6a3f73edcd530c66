// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/this_task.hpp>

#include <mutex>

#include <boost/fiber/operations.hpp>

#include <fiberutils/detail/task_group.hpp>
#include <fiberutils/detail/wait.hpp>

namespace fiberutils::this_task {

std::stop_token stop_token() noexcept {
  detail::TaskBase* t = detail::current_task();
  return t ? t->token_ : std::stop_token{};
}

bool stop_requested() noexcept {
  detail::TaskBase* t = detail::current_task();
  return t && t->token_.stop_requested();
}

void sleep_until(std::chrono::steady_clock::time_point tp) {
  detail::TaskBase* t = detail::current_task();
  if (!t || !t->token_.stop_possible()) {
    boost::this_fiber::sleep_until(tp);
    return;
  }
  // A private mutex and condition variable: only this sleeper waits on them, and the stop
  // callback is what notifies them.
  std::mutex m;
  boost::fibers::condition_variable_any cv;
  std::unique_lock<std::mutex> lk(m);
  detail::wait_cancellable(lk, cv, t->token_, tp, [] { return false; });
}

void yield() {
  const std::stop_token stop = stop_token();
  if (stop.stop_requested()) throw cancelled{};
  boost::this_fiber::yield();
  if (stop.stop_requested()) throw cancelled{};
}

}  // namespace fiberutils::this_task
