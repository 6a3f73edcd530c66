// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/detail/park.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "live_tasks_state.hpp"

namespace fiberutils::detail {

namespace bi = boost_internals;

Park::Park(WaitKind kind) noexcept : fiber_(bi::active()), kind_(kind) { bi::arm(fiber_, marker()); }

Park::~Park() { (void)bi::disarm(fiber_); }

bool Park::wake() noexcept {
  boost::fibers::context* f = fiber_;  // read before the claim: afterwards the Park may be gone
  if (!bi::claim(f, marker())) return false;
  if (f == bi::active()) {
    // Only the waiter's own stop callback, run inline while wait() registers it, gets here.
    woke_itself_ = true;
    bi::disarm(f);
    return true;
  }
  bi::schedule(f);
  return true;
}

struct Park::OnStop {
  Park* p;
  void operator()() const noexcept { (void)p->wake(); }
};

ParkStatus Park::wait(const std::stop_token& stop, std::optional<Clock::time_point> deadline) noexcept {
  const WaitNote note(kind_);  // what live_tasks() shows meanwhile
  std::optional<std::stop_callback<OnStop>> on_stop;
  if (stop.stop_possible()) on_stop.emplace(stop, OnStop{this});
  if (woke_itself_) return ParkStatus::stopped;
  if (deadline)
    bi::suspend_until(*deadline);
  else
    bi::suspend();
  // Resumed by exactly one of: a claimer's schedule, or the sleep queue at the deadline.
  const std::intptr_t how = bi::disarm(fiber_);
  on_stop.reset();  // waits for a callback running on another thread right now
  if (stop.stop_requested()) return ParkStatus::stopped;
  return how == -2 ? ParkStatus::timed_out : ParkStatus::woken;
}

void ParkQueue::push_back(Park& p) noexcept {
  p.next_ = nullptr;
  p.prev_ = tail_;
  if (tail_) tail_->next_ = &p; else head_ = &p;
  tail_ = &p;
  p.queued_ = true;
}

void ParkQueue::remove(Park& p) noexcept {
  if (!p.queued_) return;
  if (p.prev_) p.prev_->next_ = p.next_; else head_ = p.next_;
  if (p.next_) p.next_->prev_ = p.prev_; else tail_ = p.prev_;
  p.next_ = p.prev_ = nullptr;
  p.queued_ = false;
}

Park* ParkQueue::pop_front() noexcept {
  Park* p = head_;
  if (p) remove(*p);
  return p;
}

Park* ParkQueue::pop_back() noexcept {
  Park* p = tail_;
  if (p) remove(*p);
  return p;
}

bool ParkQueue::wake_one() noexcept {
  while (Park* p = pop_front())
    if (p->wake()) return true;
  return false;
}

void ParkQueue::wake_all() noexcept {
  while (Park* p = pop_front()) (void)p->wake();
}

std::stop_token current_stop_token() noexcept {
  TaskBase* t = current_task();
  return t ? t->group_->task_token() : std::stop_token{};
}

void throw_cancelled() { throw cancelled{}; }

}  // namespace fiberutils::detail
