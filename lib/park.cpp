// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/detail/park.hpp>

#include <atomic>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "fiber_state.hpp"
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

ParkStatus Park::wait(const StopCondition& stop, std::optional<Clock::time_point> deadline) noexcept {
  const WaitNote note(kind_);  // what live_tasks() shows meanwhile
  std::optional<std::stop_callback<OnStop>> on_stop;
  if (stop.token().stop_possible()) on_stop.emplace(stop.token(), OnStop{this});
  if (woke_itself_) return ParkStatus::stopped;
  // A deadline scope's deadline ends the wait too: stop_requested() below then expires it.
  if (const std::optional<Clock::time_point> scope = stop.deadline(); scope && (!deadline || *scope < *deadline))
    deadline = scope;
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

StopCondition current_stop() noexcept {
  FiberState* s = fiber_state();
  if (!s) return {};
  return StopCondition(s->current ? s->current->group_->task_token() : std::stop_token{}, s->scope);
}

namespace {
// The main fiber of each thread: its state needs no fiber-specific slot (an allocation).
thread_local FiberState main_fiber_state;

// The last fiber looked up on this thread and its state: most lookups come from the fiber that
// looked last (a task's puts and its cancellation checks), and this saves the slot's map lookup.
// A fiber's state changes only through set_fiber_state, on that fiber, which updates the cache;
// a runner clears its state before it ends, so a later fiber at the same address finds none.
struct LastLookup {
  bi::Fiber* fiber = nullptr;
  FiberState* state = nullptr;
};
thread_local LastLookup last_lookup;
}  // namespace

FiberState* fiber_state() noexcept {
  bi::Fiber* f = bi::active();
  if (f == last_lookup.fiber) return last_lookup.state;
  FiberState* s = static_cast<FiberState*>(bi::runner_slot());
  if (!s && bi::is_main_fiber()) s = &main_fiber_state;
  last_lookup = {f, s};
  return s;
}

namespace {
std::atomic<long> stop_sources{0};
}  // namespace

void count_stop_source(int delta) noexcept { stop_sources.fetch_add(delta, std::memory_order_seq_cst); }

// Relaxed: a stop requested on another thread is seen here no later than anything that thread
// published after it (its later releases synchronise with our acquires).
bool stops_possible() noexcept { return stop_sources.load(std::memory_order_relaxed) != 0; }

RunnerRecord* runner_record() noexcept {
  FiberState* s = fiber_state();
  return s && s->is_runner ? static_cast<RunnerRecord*>(s) : nullptr;
}

void set_fiber_state(FiberState* s) noexcept {
  bi::set_runner_slot(s);
  last_lookup = {bi::active(), s};
}

void throw_cancelled() { throw cancelled{}; }

}  // namespace fiberutils::detail
