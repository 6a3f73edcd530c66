// SPDX-License-Identifier: Apache-2.0
//
// fu::Semaphore: a counting semaphore for fibers (Boost.Fiber has none).
//
// It holds a count of permits. acquire() takes one, suspending the calling fiber (never the
// thread) while the count is 0; release(n) adds n and wakes up to n waiters. Pool's limit is
// built on it.
//
// - Suspends: acquire(), try_acquire_for(), try_acquire_until(). Inside a task they are
//   cancellation points: they throw fu::cancelled when the task's stop is requested, waking at
//   once if they were waiting. Never suspend: release(), try_acquire(), count().
// - Thread-safe: every member, from any thread and any fiber; a release on one thread wakes a
//   fiber waiting on another.
// - Order: waiters are woken in FIFO order, but a fiber calling acquire() just as a permit is
//   released may take it before the woken waiter (no hand-off); use Pool for FIFO task order.
// - Destructor: must not run while fibers wait on it (as for std::counting_semaphore); if it
//   does, it prints a message and calls std::abort() rather than leave the waiters to wake up
//   inside a destroyed object.
//
// Example:
//   fu::Semaphore connections(8);
//   g.spawn([&] { connections.acquire(); use_connection(); connections.release(); });
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <limits>
#include <optional>
#include <mutex>

#include <fiberutils/detail/park.hpp>

namespace fiberutils {

class Semaphore {
 public:
  // Semaphore(n) starts with n permits. Throws std::invalid_argument when n < 0.
  explicit Semaphore(std::ptrdiff_t initial);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore();

  static constexpr std::ptrdiff_t max() noexcept {
    return std::numeric_limits<std::ptrdiff_t>::max();
  }

  // acquire() suspends the calling fiber until a permit is free and takes it.
  void acquire();
  // try_acquire() takes a permit if one is free; never suspends.
  bool try_acquire() noexcept;
  // try_acquire_for(d) / try_acquire_until(tp): acquire() giving up at the deadline (false).
  template <class Rep, class Period>
  bool try_acquire_for(std::chrono::duration<Rep, Period> d) {
    return try_acquire_until(std::chrono::steady_clock::now() +
                             std::chrono::ceil<std::chrono::steady_clock::duration>(d));
  }
  template <class Clock, class Duration>
  bool try_acquire_until(std::chrono::time_point<Clock, Duration> tp) {
    return try_acquire_until_steady(
        std::chrono::steady_clock::now() +
        std::chrono::ceil<std::chrono::steady_clock::duration>(tp - Clock::now()));
  }

  // release(n) gives back n permits (default 1). Throws std::invalid_argument when n < 0 and
  // std::overflow_error when the count would exceed max(); the count is unchanged then.
  void release(std::ptrdiff_t n = 1);

  // count() is the number of free permits at the time of the call.
  std::ptrdiff_t count() const noexcept;

 private:
  bool try_acquire_until_steady(std::chrono::steady_clock::time_point tp);
  bool wait_and_acquire(std::optional<std::chrono::steady_clock::time_point> deadline);
  void leave_waiting(bool took) noexcept;

  // The count is atomic so that try_acquire() and a release() nobody waits for take no lock
  // (Pool admits and finishes every task through them). m_ and parked_ serve waiters only.
  std::mutex m_;
  detail::ParkQueue parked_;
  std::atomic<std::ptrdiff_t> count_;
  std::atomic<std::size_t> waiters_{0};
};

}  // namespace fiberutils
