// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/detail/park.hpp>

#include <algorithm>
#include <atomic>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/this_task.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "fast_tls.hpp"
#include "fiber_state.hpp"
#include "live_tasks_state.hpp"

namespace fiberutils::detail {

namespace bi = boost_internals;

Park::Park(WaitKind kind, bi::Fiber* self) noexcept
    : fiber_(self ? self : bi::active()), kind_(kind) {
  bi::arm(fiber_, marker());
}

Park::~Park() {
  if (!waited_) (void)bi::disarm(fiber_);
}

bool Park::wake() noexcept {
  boost::fibers::context* f = fiber_;  // read before the claim: afterwards the Park may be gone
  if (!bi::claim(f, marker())) return false;
  bi::schedule(f);
  return true;
}

void Park::OnStop::operator()() const noexcept {
  boost::fibers::context* f = p->fiber_;
  if (!bi::claim(f, p->marker())) return;
  if (f == bi::active()) {
    p->woke_itself_ = true;
    (void)bi::disarm(f);
    return;
  }
  bi::schedule(f);
}

Clock::time_point Park::begin_wait(const StopCondition& stop, Clock::time_point deadline) noexcept {
  waited_ = true;  // every path through wait() leaves the word disarmed
  note_ = runner_record(fiber_);
  begin_wait_note(note_, kind_);  // what live_tasks() shows meanwhile
  if (stop.token().stop_possible()) on_stop_.emplace(stop.token(), OnStop{this});
  if (woke_itself_) return deadline;  // the callback disarmed: wait() does not suspend
  // A deadline scope's deadline ends the wait too: stop_requested() in end_wait then expires it.
  if (stop.in_scope()) deadline = std::min(deadline, stop.scope_deadline());
  return deadline;
}

void Park::block(const Clock::time_point& until) noexcept {
  if (until == kNoDeadline)
    bi::suspend(fiber_);
  else
    bi::suspend_until(fiber_, until);
}

ParkStatus Park::end_wait(const StopCondition& stop) noexcept {
  // Resumed by exactly one of: a claimer's schedule, or the sleep queue at the deadline (or not
  // suspended at all: woke_itself_).
  const std::intptr_t how = woke_itself_ ? 0 : bi::disarm_resumed(fiber_);
  on_stop_.reset();  // waits for a callback running on another thread right now
  end_wait_note(note_);
  if (woke_itself_ || stop.stop_requested()) return ParkStatus::stopped;
  return how == -2 ? ParkStatus::timed_out : ParkStatus::woken;
}

StopCondition current_stop() noexcept {
  bi::Fiber* const self = bi::active();
  return stop_of(fiber_state(self), self);
}

StopCondition stop_of(const FiberState* s, bi::Fiber* self) noexcept {
  if (!s) return StopCondition({}, nullptr, self);
  return StopCondition(s->current ? s->current->group_->task_token() : std::stop_token{}, s->scope,
                       self);
}

namespace {
// The main fiber of each thread: its state needs no fiber-specific slot (an allocation).
FIBERUTILS_FAST_TLS thread_local FiberState main_fiber_state;

// The last fiber other than the main one looked up on this thread, and its state: most lookups
// come from the fiber that looked last (a task's puts and its cancellation checks, a runner's
// next park), and this saves the slot's map lookup. The main fiber, the usual other party of a
// switch, is recognised without the cache and leaves it alone. A fiber's state changes only
// through set_fiber_state, on that fiber, which updates the cache; a runner clears its state
// before it ends, so a later fiber at the same address finds none.
struct LastLookup {
  bi::Fiber* fiber = nullptr;
  FiberState* state = nullptr;
};
FIBERUTILS_FAST_TLS thread_local LastLookup last_lookup;
}  // namespace

FiberState* fiber_state(bi::Fiber* f) noexcept {
  if (f == last_lookup.fiber) return last_lookup.state;
  if (bi::is_main_fiber(f)) return &main_fiber_state;
  FiberState* s = static_cast<FiberState*>(bi::runner_slot(f));
  last_lookup = {f, s};
  return s;
}

FiberState* fiber_state() noexcept { return fiber_state(bi::active()); }

std::atomic<long> live_stop_sources{0};

void count_stop_source(int delta) noexcept { live_stop_sources.fetch_add(delta, std::memory_order_seq_cst); }

RunnerRecord* runner_record(bi::Fiber* f) noexcept {
  FiberState* s = fiber_state(f);
  return s && s->is_runner ? static_cast<RunnerRecord*>(s) : nullptr;
}

RunnerRecord* runner_record() noexcept { return runner_record(bi::active()); }

void set_fiber_state(FiberState* s) noexcept {
  bi::set_runner_slot(s);
  last_lookup = {bi::active(), s};
}

void throw_cancelled() { throw cancelled{}; }

}  // namespace fiberutils::detail
