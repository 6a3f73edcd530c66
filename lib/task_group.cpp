// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/detail/task_group.hpp>

#include <cstdio>
#include <exception>
#include <stdexcept>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>

#include "executor.hpp"

#include "fiberutils_config.hpp"

namespace fiberutils {

StackSize default_stack_size() noexcept { return StackSize{FIBERUTILS_DEFAULT_STACK_SIZE}; }

namespace detail {

TaskGroup::TaskGroup(StackSize stack) : stack_size_(stack.bytes) {
  if (stack.bytes == 0) throw std::invalid_argument("fiberutils: StackSize must not be 0");
}

TaskGroup::~TaskGroup() {
  // Owners call shutdown() first; this is the backstop for a TaskGroup used directly.
  shutdown();
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
    on_idle_locked();
    joiners_.wake_all();
  }
}

void TaskGroup::record_error(std::exception_ptr e) noexcept {
  std::lock_guard<std::mutex> lk(m_);
  if (!error_) error_ = std::move(e);
}

bool TaskGroup::join_until(std::optional<Clock::time_point> deadline) {
  TaskBase* self = current_task();
  if (is_own_task(self))
    throw std::logic_error(
        "fiberutils: join() called from one of the group's own tasks (it could never return)");
  const std::stop_token stop = self ? self->group_->task_token() : std::stop_token{};
  std::unique_lock<std::mutex> lk(m_);
  if (!park_until(lk, joiners_, stop, deadline, [this] { return count_ == 0; }))
    return false;
  // The tasks that a cancel() was meant for are gone: later spawns start a new generation.
  if (stop_.stop_requested()) stop_ = std::stop_source{};
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
  }
  // Outside the lock: stop callbacks take the locks of whatever the tasks wait on.
  s.request_stop();
}

std::size_t TaskGroup::size() const noexcept {
  std::lock_guard<std::mutex> lk(m_);
  return count_;
}

void TaskGroup::shutdown() noexcept {
  cancel();
  std::unique_lock<std::mutex> lk(m_);
  (void)park_until(lk, joiners_, std::stop_token{}, std::nullopt, [this] { return count_ == 0; });
  std::exception_ptr e = take_error_locked();
  lk.unlock();
  if (!e) return;
  // Never lose an error silently: nobody joined after it was thrown.
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "fiberutils: a task's exception was never joined: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "fiberutils: a task's exception was never joined (not a std::exception)\n");
  }
}

}  // namespace detail
}  // namespace fiberutils
