// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/semaphore.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <fiberutils/this_task.hpp>

namespace fiberutils {

Semaphore::Semaphore(std::ptrdiff_t initial) : count_(initial) {
  if (initial < 0) throw std::invalid_argument("fiberutils::Semaphore: initial count must be >= 0");
}

// A waiter would wake up inside a destroyed object: stop here, loudly, as std::thread's
// destructor does for a joinable thread, instead of corrupting memory later.
Semaphore::~Semaphore() {
  if (const std::size_t n = waiters_.load(std::memory_order_seq_cst); n > 0) {
    std::fprintf(stderr, "fiberutils::Semaphore destroyed while %zu fiber(s) wait on it\n", n);
    std::abort();
  }
}

bool Semaphore::try_acquire() noexcept {
  std::ptrdiff_t c = count_.load(std::memory_order_relaxed);
  while (c > 0)
    if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

void Semaphore::acquire() {
  if (this_task::stop_requested()) throw cancelled{};
  if (try_acquire()) return;
  (void)wait_and_acquire(std::nullopt);
}

bool Semaphore::try_acquire_until_steady(std::chrono::steady_clock::time_point tp) {
  if (this_task::stop_requested()) throw cancelled{};
  if (try_acquire()) return true;
  return wait_and_acquire(tp);
}

// The slow path. A waiter announces itself (waiters_) before it looks at the count, and release()
// adds to the count before it looks at waiters_; both are seq_cst, so at least one of them sees
// the other, and release() wakes under m_, which the waiter holds until it is parked in parked_.
bool Semaphore::wait_and_acquire(std::optional<std::chrono::steady_clock::time_point> deadline) {
  const detail::StopCondition stop = detail::current_stop();
  std::unique_lock<std::mutex> lk(m_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool took = false;
  try {
    while (detail::park_until(lk, parked_, stop, deadline, [this] {
      return count_.load(std::memory_order_seq_cst) > 0;
    }, detail::WaitKind::semaphore)) {
      if ((took = try_acquire())) break;  // else another fiber took it first: wait again
    }
  } catch (...) {
    leave_waiting(took);
    throw;
  }
  leave_waiting(took);
  return took;
}

// A waiter leaving without a permit (cancelled, timed out) while permits are free passes the
// wake-up on: wake_one may have picked it. m_ is held.
void Semaphore::leave_waiting(bool took) noexcept {
  const std::size_t left = waiters_.fetch_sub(1, std::memory_order_seq_cst) - 1;
  if (!took && left > 0 && count_.load(std::memory_order_seq_cst) > 0) parked_.wake_one();
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) throw std::invalid_argument("fiberutils::Semaphore::release: n must be >= 0");
  if (n == 0) return;
  std::ptrdiff_t c = count_.load(std::memory_order_relaxed);
  do {
    if (n > max() - c)
      throw std::overflow_error("fiberutils::Semaphore::release: count would exceed max()");
  } while (!count_.compare_exchange_weak(c, c + n, std::memory_order_seq_cst,
                                         std::memory_order_relaxed));
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> lk(m_);
  for (std::ptrdiff_t i = 0; i < n && parked_.wake_one(); ++i) {
  }
}

std::ptrdiff_t Semaphore::count() const noexcept { return count_.load(std::memory_order_relaxed); }

}  // namespace fiberutils
