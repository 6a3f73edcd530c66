// SPDX-License-Identifier: Apache-2.0
//
// Deadline scopes (include/fiberutils/detail/deadline_scope.hpp) and the one timer thread that
// expires the scopes whose token was asked for. The thread starts with the first such scope and
// is joined at exit; scopes whose token nobody asked for never reach it.
#include <fiberutils/deadline.hpp>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "fiber_state.hpp"

namespace fiberutils::detail {
namespace {

class ScopeTimer {
 public:
  ~ScopeTimer() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  void add(DeadlineScope::Clock::time_point tp, DeadlineScope* s) {
    std::lock_guard<std::mutex> lk(m_);
    queue_.emplace(tp, s);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    cv_.notify_one();
  }

  // Waits for an expiry of `s` in progress (it runs under m_).
  void remove(DeadlineScope::Clock::time_point tp, DeadlineScope* s) noexcept {
    std::lock_guard<std::mutex> lk(m_);
    auto [first, last] = queue_.equal_range(tp);
    for (auto i = first; i != last; ++i)
      if (i->second == s) {
        queue_.erase(i);
        return;
      }
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stopping_) {
      if (queue_.empty()) {
        cv_.wait(lk);
        continue;
      }
      auto first = queue_.begin();
      if (first->first > DeadlineScope::Clock::now()) {
        cv_.wait_until(lk, first->first);
        continue;
      }
      DeadlineScope* s = first->second;
      queue_.erase(first);
      s->expire();  // under m_: the scope's destructor waits in remove() meanwhile
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::multimap<DeadlineScope::Clock::time_point, DeadlineScope*> queue_;
  std::thread thread_;
  bool stopping_ = false;
};

ScopeTimer& scope_timer() {
  static ScopeTimer timer;
  return timer;
}

}  // namespace

DeadlineScope::DeadlineScope(Clock::time_point deadline)
    : deadline_(deadline), earliest_(deadline), outer_(nullptr), state_(fiber_state()) {
  if (!state_) {
    // A fiber that fiberutils did not start and that is not a thread's main fiber: the only
    // case that allocates.
    own_state_ = new FiberState{};
    set_fiber_state(own_state_);
    state_ = own_state_;
  }
  count_stop_source(+1);
  outer_ = state_->scope;
  if (outer_ && outer_->earliest_ < earliest_) earliest_ = outer_->earliest_;
  state_->scope = this;
}

DeadlineScope::~DeadlineScope() {
  if (timer_registered_) scope_timer().remove(deadline_, this);
  from_outer_.reset();
  state_->scope = outer_;
  count_stop_source(-1);
  if (own_state_) {
    set_fiber_state(nullptr);
    delete own_state_;
  }
}

void DeadlineScope::expire() noexcept {
  expired_.store(true, std::memory_order_release);
  if (source_) source_->request_stop();
}

bool DeadlineScope::chain_stopped() noexcept {
  for (DeadlineScope* s = this; s; s = s->outer_)
    if (s->expired_.load(std::memory_order_acquire)) return true;
  if (Clock::now() < earliest_) return false;
  // The earliest deadline wins; of scopes sharing it, the outermost catches.
  DeadlineScope* due = nullptr;
  for (DeadlineScope* s = this; s; s = s->outer_)
    if (s->deadline_ == earliest_) due = s;
  due->expire();
  return true;
}

bool DeadlineScope::outside_stop_requested() const noexcept {
  if (state_->current && state_->current->group_->task_stop_requested()) return true;
  for (DeadlineScope* s = outer_; s; s = s->outer_)
    if (s->expired_.load(std::memory_order_acquire)) return true;
  return false;
}

bool DeadlineScope::caught_here() const noexcept {
  return expired_.load(std::memory_order_acquire) && !outside_stop_requested();
}

std::stop_token DeadlineScope::token() {
  if (!source_) {
    source_.emplace();
    const std::stop_token outer =
        outer_ ? outer_->token()
               : (state_->current ? state_->current->group_->task_token() : std::stop_token{});
    if (outer.stop_possible()) from_outer_.emplace(outer, Propagate{this});
    if (expired_.load(std::memory_order_acquire) || Clock::now() >= deadline_) {
      expire();
    } else {
      scope_timer().add(deadline_, this);
      timer_registered_ = true;
    }
  }
  return source_->get_token();
}

bool StopCondition::scope_stopped() const noexcept { return scope_->chain_stopped(); }

Clock::time_point StopCondition::scope_deadline() const noexcept { return scope_->earliest(); }

void throw_timed_out(std::chrono::steady_clock::duration d) {
  char text[96];
  std::snprintf(text, sizeof text, "fiberutils: deadline of %.3f ms passed",
                std::chrono::duration<double, std::milli>(d).count());
  throw timed_out(text);
}

}  // namespace fiberutils::detail
