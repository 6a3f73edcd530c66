// SPDX-License-Identifier: Apache-2.0
//
// fu::this_task: what code running inside a task can ask about itself, and the library's
// cancellation points for it.
//
// Vocabulary used across fiberutils' headers:
//   *suspends*        the calling fiber waits; other fibers on its thread keep running.
//   *blocks the thread* nothing else runs on the thread meanwhile (fiberutils never does this
//                     except for short internal critical sections).
//   *cancellation point* a call that throws fu::cancelled when the calling task's stop has been
//                     requested, and that wakes at once if the stop comes while it waits.
//
// Outside a task (plain code, or a fiber fiberutils did not start) the functions still work:
// stop_token() never stops, stop_requested() is false, and sleep/yield never throw.
//
// Example:
//   g.spawn([] {
//     while (true) {
//       fu::this_task::sleep_for(10ms);   // throws fu::cancelled once g.cancel() is called
//       poll();
//     }
//   });
#pragma once

#include <atomic>
#include <chrono>
#include <stop_token>

#include <fiberutils/cancelled.hpp>

namespace fiberutils::detail {
// How many things that can stop a task exist in the process right now: groups whose stop was
// requested (until their join() starts a new generation, or their end) and open deadline
// scopes (lib/park.cpp). While it is 0 no cancellation point can throw, and
// this_task::stop_requested() answers inline, without looking the fiber up: the hot paths of a
// stream's put and iteration ask on every value.
extern std::atomic<long> live_stop_sources;
bool stop_requested_slow() noexcept;
}  // namespace fiberutils::detail

namespace fiberutils::this_task {

// stop_token() returns the running task's stop token; outside a task, one that never stops.
// Never suspends.
std::stop_token stop_token() noexcept;

// stop_requested() is stop_token().stop_requested(). Never suspends.
inline bool stop_requested() noexcept {
  // Relaxed: a stop requested on another thread is seen here no later than anything that thread
  // published after it (its later releases synchronise with our acquires).
  if (detail::live_stop_sources.load(std::memory_order_relaxed) == 0) return false;
  return detail::stop_requested_slow();
}

// sleep_until(tp) suspends the calling fiber until tp. Cancellation point.
void sleep_until(std::chrono::steady_clock::time_point tp);

// sleep_for(d) suspends the calling fiber for d. Cancellation point.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(std::chrono::steady_clock::now() +
              std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}

// yield() lets the other ready fibers of this thread run, then resumes. Cancellation point
// (checked before and after yielding).
void yield();

}  // namespace fiberutils::this_task
