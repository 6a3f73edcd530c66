// SPDX-License-Identifier: Apache-2.0
//
// Internal: the one way fiberutils waits. A fiber waits on a boost::fibers::condition_variable_any
// under a std::mutex (never held across a suspension), and a std::stop_callback on the waiting
// task's token wakes it, so every library wait is a cancellation point in the same way.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <stop_token>

#include <boost/fiber/condition_variable.hpp>

#include <fiberutils/cancelled.hpp>

namespace fiberutils::detail {

// Waits with `lk` held on entry and on return until pred() holds (true) or the deadline passes
// (false). Throws fu::cancelled, with `lk` held, when `stop` is requested before or during the
// wait. Suspends the calling fiber only.
template <class Pred>
bool wait_cancellable(std::unique_lock<std::mutex>& lk, boost::fibers::condition_variable_any& cv,
                      const std::stop_token& stop,
                      std::optional<std::chrono::steady_clock::time_point> deadline, Pred pred) {
  auto wait = [&](auto&& done) {
    if (!deadline) {
      cv.wait(lk, done);
      return true;
    }
    return cv.wait_until(lk, *deadline, done);
  };
  if (!stop.stop_possible()) return wait(pred);

  // The callback takes the mutex, so a stop can't slip between our check and our wait. It must
  // be registered and destroyed without the mutex held: its constructor may run it inline, and
  // its destructor waits for a run in progress on another thread. Between that destruction and
  // relocking, the state may change again, hence the loop.
  std::mutex& m = *lk.mutex();
  for (;;) {
    if (stop.stop_requested()) throw cancelled{};
    if (pred()) return true;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
    lk.unlock();
    {
      std::stop_callback wake(stop, [&m, &cv] {
        std::lock_guard<std::mutex> g(m);
        cv.notify_all();
      });
      lk.lock();
      wait([&] { return stop.stop_requested() || pred(); });
      lk.unlock();
    }
    lk.lock();
  }
}

}  // namespace fiberutils::detail
