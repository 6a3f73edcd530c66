// SPDX-License-Identifier: Apache-2.0
//
// Internal: a deadline scope, what fu::move_on_after and friends (fiberutils/deadline.hpp) open
// around their function. It links itself into the calling fiber's chain of scopes, which every
// library wait of that fiber consults (StopCondition, detail/park.hpp): a wait ends at the
// earliest deadline of the chain, and the scope with that deadline *expires*, so the wait throws
// fu::cancelled. Entering and leaving one costs a few pointer writes: no allocation, no timer.
// Only when code inside asks for this_task::stop_token() does the scope make a std::stop_source
// of its own (chained to the outer scope's or the task's token) and register its deadline with a
// timer thread, so that a loop polling that token sees the deadline too.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <stop_token>

namespace fiberutils::detail {

struct FiberState;

class DeadlineScope {
 public:
  using Clock = std::chrono::steady_clock;

  // Opens a scope with this deadline on the calling fiber. Never suspends.
  explicit DeadlineScope(Clock::time_point deadline);
  DeadlineScope(const DeadlineScope&) = delete;
  DeadlineScope& operator=(const DeadlineScope&) = delete;
  ~DeadlineScope();

  // Whether the fu::cancelled that left the function is this scope's to catch: its own deadline
  // expired it, and no stop came from outside (the task's stop, an outer scope's deadline).
  bool caught_here() const noexcept;

  // Used by StopCondition and this_task: the chain's state.
  bool chain_stopped() noexcept;  // expires the scope of the earliest deadline once it passed
  Clock::time_point earliest() const noexcept { return earliest_; }
  std::stop_token token();  // the scope's own token (made on first use)
  void expire() noexcept;

 private:
  bool outside_stop_requested() const noexcept;
  struct Propagate {
    DeadlineScope* s;
    void operator()() const noexcept { s->source_->request_stop(); }
  };

  Clock::time_point deadline_;
  Clock::time_point earliest_;  // of this scope and every outer one
  DeadlineScope* outer_;
  FiberState* state_;
  FiberState* own_state_ = nullptr;  // for fibers that had none (not runners, not main fibers)
  std::atomic<bool> expired_{false};
  std::optional<std::stop_source> source_;                 // made by token()
  std::optional<std::stop_callback<Propagate>> from_outer_;
  bool timer_registered_ = false;
};

}  // namespace fiberutils::detail
