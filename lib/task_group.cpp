// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/detail/task_group.hpp>

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>

#include "executor.hpp"
#include "fiber_state.hpp"

namespace fiberutils::detail {

void throw_second_consumer() {
  throw std::logic_error(
      "fiberutils: a second fiber iterates a stream while another one waits on it (a stream has "
      "one consumer at a time)");
}

std::size_t checked_limit(std::ptrdiff_t n, const char* who) {
  if (n < 1) throw std::invalid_argument(std::string(who) + ": limit must be at least 1");
  return static_cast<std::size_t>(n);
}

TaskGroup::TaskGroup(StackSize stack, std::size_t limit, StreamGate* gate, bool fail_fast)
    : stack_size_(stack.bytes), limit_(limit), gate_(gate), fail_fast_(fail_fast) {
  if (stack.bytes == 0) throw std::invalid_argument("fiberutils: StackSize must not be 0");
  if (limit > 0) slots_.emplace(static_cast<std::ptrdiff_t>(limit));
}

TaskGroup::~TaskGroup() {
  cancel();
  std::unique_lock<std::mutex> lk(m_);
  // A cancelled stream admits the tasks it held back for room, here on the owner's thread, so
  // that they start, meet their stop and end (cancel() itself may come from a thread that runs
  // no fibers). For Group and Pool this admits nothing that a free slot would not.
  admit_pending_locked();
  (void)park_until(lk, joiners_, StopCondition{}, std::nullopt, [this] { return count_ == 0; },
                   WaitKind::join);
  std::exception_ptr e = take_error_locked();
  const std::size_t dropped = dropped_;
  if (std::exchange(stop_counted_, false)) count_stop_source(-1);
  lk.unlock();
  if (!e) return;
  // Never lose an error silently: nobody joined after it was thrown.
  const char* more = dropped > 0 ? " (and later ones were dropped)" : "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "fiberutils: a task's exception was never joined: %s%s\n", ex.what(), more);
  } catch (...) {
    std::fprintf(stderr, "fiberutils: a task's exception was never joined (not a std::exception)%s\n",
                 more);
  }
}

bool TaskGroup::try_admit_locked() noexcept {
  if (gate_ && !gate_->has_room_locked()) return false;
  return !slots_ || slots_->try_acquire();
}

void TaskGroup::release_locked() noexcept {
  if (slots_) slots_->release();
}

void TaskGroup::submit(TaskBase* t) {
  std::unique_lock<std::mutex> lk(m_);
  t->group_ = this;
  const bool needs_slot = t->holds_slot();
  if (!needs_slot || (pending_.empty() && try_admit_locked())) {
    try {
      current_executor().enqueue(t, stack_size_);
    } catch (...) {
      // No runner could be started (out of memory): undo, so the group stays consistent.
      if (needs_slot) release_locked();
      lk.unlock();
      delete t;
      throw;
    }
  } else {
    pending_.push(t);
  }
  ++count_;
}

void TaskGroup::admit_pending_locked() noexcept {
  while (!pending_.empty() && try_admit_locked()) {
    TaskBase* t = pending_.pop();
    try {
      current_executor().enqueue(t, stack_size_);
    } catch (...) {
      // Out of memory for a runner: keep the task first in line; the next task to finish
      // admits it again.
      release_locked();
      pending_.push_front(t);
      return;
    }
  }
}

void TaskGroup::task_finished(bool held_slot) noexcept {
  std::lock_guard<std::mutex> lk(m_);
  if (held_slot) {
    release_locked();
    admit_pending_locked();
  }
  if (--count_ == 0) {
    if (gate_) gate_->on_idle_locked();
    joiners_.wake_all();
  }
}

void TaskGroup::record_error(std::exception_ptr e) noexcept {
  bool stop_now = false;
  {
    std::lock_guard<std::mutex> lk(m_);
    if (!error_) {
      error_ = std::move(e);
      stop_now = fail_fast_ && !failed_;
      failed_ = failed_ || fail_fast_;
    } else {
      ++dropped_;
    }
  }
  if (stop_now) cancel();
}

std::size_t TaskGroup::dropped_exceptions() const noexcept {
  std::lock_guard<std::mutex> lk(m_);
  return dropped_;
}

bool TaskGroup::join_until(std::optional<Clock::time_point> deadline) {
  boost_internals::Fiber* const self = boost_internals::active();
  const FiberState* const state = fiber_state(self);
  if (is_own_task(state ? state->current : nullptr))
    throw std::logic_error(
        "fiberutils: join() called from one of the group's own tasks (it could never return)");
  const StopCondition stop = stop_of(state, self);
  std::unique_lock<std::mutex> lk(m_);
  if (!park_until(lk, joiners_, stop, deadline, [this] { return count_ == 0; }, WaitKind::join)) return false;
  // The tasks that a cancel() was meant for are gone: later spawns start a new generation.
  if (stop_.stop_requested()) stop_ = std::stop_source{};
  if (std::exchange(stop_counted_, false)) count_stop_source(-1);
  failed_ = false;
  if (std::exception_ptr e = take_error_locked()) {
    lk.unlock();
    std::rethrow_exception(e);
  }
  return true;
}

void TaskGroup::cancel() noexcept {
  std::stop_source s;
  {
    std::lock_guard<std::mutex> lk(m_);
    s = stop_;
    if (!stop_counted_) {
      stop_counted_ = true;
      count_stop_source(+1);  // before the request: a task that sees the stop sees the count
    }
    if (gate_) gate_->on_cancel_locked();
  }
  // Outside the lock: stop callbacks take the locks of whatever the tasks wait on.
  s.request_stop();
}

std::size_t TaskGroup::size() const noexcept {
  std::lock_guard<std::mutex> lk(m_);
  return count_;
}

void TaskGroup::wait_for_slot() {
  if (!slots_) return;
  slots_->acquire();
  // Give the slot back the way a finishing task does, so a task queued meanwhile starts.
  std::lock_guard<std::mutex> lk(m_);
  release_locked();
  admit_pending_locked();
}

std::size_t TaskGroup::free_slots() const noexcept {
  return slots_ ? static_cast<std::size_t>(slots_->count()) : 0;
}

}  // namespace fiberutils::detail
