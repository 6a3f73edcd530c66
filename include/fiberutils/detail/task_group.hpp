// SPDX-License-Identifier: Apache-2.0
//
// Internal: the one task machinery behind Group, Pool, Yielder and OrderedYielder.
//
// A TaskGroup counts its unfinished tasks, keeps the first exception, owns the stop source its
// tasks share, and admits tasks to the calling thread's runners. Subclasses decide admission
// (Pool: a semaphore slot; streams: a slot and room in the buffer): a task that is not admitted
// waits in `pending_` as a queued callable, without a stack.
//
// Locking: one std::mutex per group, held only for short sections that never suspend and never
// run user code, so it is safe from any thread and any fiber.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <stop_token>
#include <utility>

#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils::detail {

class TaskGroup {
 public:
  explicit TaskGroup(StackSize stack);
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  virtual ~TaskGroup();

  // Creates the task, counts it and admits or queues it. Never suspends. A task whose Sink is
  // not kAdmitted (a stream's body) starts at once, without a slot.
  template <class Sink, class F, class... Args>
  void spawn_with(Sink sink, F&& f, Args&&... args) {
    using T = Task<Sink, std::decay_t<F>, std::decay_t<Args>...>;
    submit(new T(std::move(sink), std::forward<F>(f), std::forward<Args>(args)...));
  }

  // Waits until no task is left (nullopt deadline: forever), then rethrows the first error.
  // Returns false when the deadline passed first. Cancellation point.
  bool join_until(std::optional<Clock::time_point> deadline);
  void cancel() noexcept;
  std::size_t size() const noexcept;

  // The stop token of the group's current generation, which its tasks share. Read without the
  // lock: stop_ is replaced only by join() while no task is counted, and a task that reads it
  // is counted.
  std::stop_token task_token() const noexcept { return stop_.get_token(); }
  bool task_stop_requested() const noexcept { return stop_.stop_requested(); }

  // Called by runners (lib/executor.cpp) when a task ends.
  void record_error(std::exception_ptr e) noexcept;
  void task_finished(bool held_slot) noexcept;

 protected:
  // Stop tasks and wait for them without being a cancellation point; report an error nobody
  // joined. Every owner's destructor calls it first, while its subclass state is still alive.
  void shutdown() noexcept;

  // Admission, called with m_ held. The default admits everything.
  virtual bool try_admit_locked() noexcept { return true; }
  virtual void release_locked() noexcept {}
  // Called with m_ held when the last task finished.
  virtual void on_idle_locked() noexcept {}

  // Starts queued tasks while admission allows; m_ held. Subclasses call it when their
  // admission state changes (a value consumed, a slot given back).
  void admit_pending_locked() noexcept;

  std::stop_token stop_token_locked() const noexcept { return stop_.get_token(); }
  std::size_t count_locked() const noexcept { return count_; }
  std::exception_ptr take_error_locked() noexcept { return std::exchange(error_, nullptr); }
  bool is_own_task(TaskBase* t) const noexcept { return t && t->group_ == this; }

  mutable std::mutex m_;
  ParkQueue joiners_;  // woken when count_ reaches 0

 private:
  void submit(TaskBase* task);

  std::size_t stack_size_;
  std::size_t count_ = 0;        // spawned and not finished, pending included
  std::exception_ptr error_;     // first error not yet rethrown
  std::stop_source stop_;        // shared by the tasks of this "generation" (until join returns)
  TaskQueue pending_;            // spawned, not admitted yet
};

template <class Sink, class F, class... Args>
std::stop_token Task<Sink, F, Args...>::group_token() const noexcept {
  return group_->task_token();
}

}  // namespace fiberutils::detail
