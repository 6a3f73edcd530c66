// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/this_task.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

#include <boost/fiber/context.hpp>

#include <boost/fiber/operations.hpp>

#include <fiberutils/detail/task_group.hpp>
#include <fiberutils/detail/wait.hpp>

namespace fiberutils::this_task {

std::stop_token stop_token() noexcept {
  detail::TaskBase* t = detail::current_task();
  return t ? t->group_->task_token() : std::stop_token{};
}

bool stop_requested() noexcept {
  detail::TaskBase* t = detail::current_task();
  return t && t->group_->task_stop_requested();
}

namespace {
// Marks "sleeping in sleep_until, wakeable by a stop" in the fiber's twstatus, the word
// Boost.Fiber's own timed waits use to settle a race between a timeout and a wake-up: the
// scheduler's timeout path exchanges it for -2 and skips a fiber whose status is already -1;
// a waker claims the fiber by a CAS from the marker to -1 before scheduling it. Any value other
// than 0, -1 and -2 works; an address of ours cannot clash with Boost's (its own are addresses
// of its condition variables).
const char kSleepMarker = 0;
std::intptr_t sleep_marker() noexcept { return reinterpret_cast<std::intptr_t>(&kSleepMarker); }
}  // namespace

// Sleeping does not go through a condition variable: Boost.Fiber's spinlock puts a ~5 KB frame
// on the stack of every fiber that waits on one (FACTS.md), a second resident page for each
// sleeping task. Here the sleeper only links itself into the scheduler's sleep queue.
void sleep_until(std::chrono::steady_clock::time_point tp) {
  detail::TaskBase* t = detail::current_task();
  if (!t) {
    boost::this_fiber::sleep_until(tp);
    return;
  }
  const std::stop_token token = t->group_->task_token();
  if (token.stop_requested()) throw cancelled{};
  boost::fibers::context* self = boost::fibers::context::active();
  std::stop_callback wake(token, [self] {
    std::intptr_t expected = sleep_marker();
    if (self->twstatus.compare_exchange_strong(expected, -1, std::memory_order_acq_rel))
      boost::fibers::context::active()->schedule(self);
  });
  // Armed only after the callback is registered: a callback run inline by its constructor (stop
  // already requested) must not schedule a fiber that is running.
  self->twstatus.store(sleep_marker(), std::memory_order_release);
  if (token.stop_requested()) {
    // A stop arrived meanwhile. If its callback already claimed us, a wake-up is on its way and
    // must be consumed here, or it would resume this fiber in the middle of a later wait.
    std::intptr_t expected = sleep_marker();
    if (!self->twstatus.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
      self->suspend();
    self->twstatus.store(0, std::memory_order_release);
    throw cancelled{};
  }
  self->wait_until(tp);
  self->twstatus.store(0, std::memory_order_release);
  if (token.stop_requested()) throw cancelled{};
}

void yield() {
  detail::TaskBase* t = detail::current_task();
  if (t && t->group_->task_stop_requested()) throw cancelled{};
  boost::this_fiber::yield();
  if (t && t->group_->task_stop_requested()) throw cancelled{};
}

}  // namespace fiberutils::this_task
