// SPDX-License-Identifier: Apache-2.0
//
// Internal: the one task machinery behind Group, Pool, Yielder and OrderedYielder.
//
// A TaskGroup counts its unfinished tasks, keeps the first exception, owns the stop source its
// tasks share, and admits tasks to the executor of the thread they are admitted on. Admission is
// the optional limit (a Semaphore of `limit` slots: Pool, a stream's limit) and, for streams, a
// StreamGate that refuses while the stream's buffer is full. A task that is not admitted waits in
// `pending_` as a queued callable, without a stack.
//
// Owners hold the TaskGroup as their *last* member: its destructor cancels and waits for every
// task while whatever the tasks use (a stream's buffer, its order) is still alive, so no owner's
// destructor has anything to remember.
//
// Locking: one std::mutex per group, held only for short sections that never suspend and never
// run user code, so it is safe from any thread and any fiber. Streams guard their buffer with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include <fiberutils/detail/park.hpp>
#include <fiberutils/fail_fast.hpp>
#include <fiberutils/detail/task.hpp>
#include <fiberutils/semaphore.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils::detail {

// A limit from a user: n >= 1, else std::invalid_argument naming `who` (e.g. "fiberutils::Pool").
std::size_t checked_limit(std::ptrdiff_t n, const char* who);

// What a stream adds to admission; every call with the group's mutex held.
class StreamGate {
 public:
  virtual bool has_room_locked() noexcept = 0;   // false: hold tasks back
  virtual void on_cancel_locked() noexcept = 0;  // cancel() was called
  virtual void on_idle_locked() noexcept = 0;    // the last task finished
 protected:
  // Virtual: streams derive from it and may be deleted through a pointer to their own type
  // (std::unique_ptr<Yielder<T>>), which clang rightly flags for a class with virtual functions.
  virtual ~StreamGate() = default;
};

// A group's entry in the registry of live groups that fu::live_tasks() reads (lib/live_tasks.cpp):
// registered for the group's whole life, so that a dump can count its queued tasks under the
// group's mutex. Registration takes one global mutex, once per group, never per task.
class TaskGroup;
class LiveGroupEntry {
 public:
  explicit LiveGroupEntry(const TaskGroup* g) noexcept;
  ~LiveGroupEntry();
  LiveGroupEntry(const LiveGroupEntry&) = delete;
  LiveGroupEntry& operator=(const LiveGroupEntry&) = delete;

  const TaskGroup* const group;
  const std::thread::id owner;                  // the thread that made it
  std::atomic<const char*> kind{nullptr};       // nullptr: "Group" or "Pool", from the limit
  LiveGroupEntry* prev_ = nullptr;              // registry's mutex
  LiveGroupEntry* next_ = nullptr;
};

class TaskGroup {
 public:
  // limit 0: no limit. gate: nullptr for Group and Pool. fail_fast: see fiberutils/fail_fast.hpp.
  TaskGroup(StackSize stack, std::size_t limit, StreamGate* gate = nullptr, bool fail_fast = false);
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  // Requests stop, lets held-back tasks of a cancelled stream start (and meet their stop), and
  // suspends until every task has finished; an error nobody joined goes to stderr.
  ~TaskGroup();

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
  // Exceptions thrown by tasks that were dropped because an earlier one was kept for join().
  std::size_t dropped_exceptions() const noexcept;

  // The limit: wait_for_slot() suspends until a slot is free (not reserving it); cancellation
  // point. free_slots() and limit() (0: no limit) never suspend.
  void wait_for_slot();
  std::size_t free_slots() const noexcept;
  std::size_t limit() const noexcept { return limit_; }

  // The stop token of the group's current generation, which its tasks share. Read without the
  // lock: stop_ is replaced only by join() while no task is counted, and a task that reads it
  // is counted.
  std::stop_token task_token() const noexcept { return stop_.get_token(); }
  bool task_stop_requested() const noexcept { return stop_.stop_requested(); }
  bool is_own_task(TaskBase* t) const noexcept { return t && t->group_ == this; }

  // Called by runners: whether a task about to start runs its body (not after a fail-fast
  // group's stop), and when a task ends.
  bool runs_body() const noexcept { return !(fail_fast_ && stop_.stop_requested()); }
  void record_error(std::exception_ptr e) noexcept;
  void task_finished(bool held_slot) noexcept;

  // For streams, with mutex() held: the task count, the first error, and a new look at the
  // tasks held back (a value was consumed).
  std::mutex& mutex() const noexcept { return m_; }
  std::size_t count_locked() const noexcept { return count_; }
  std::exception_ptr take_error_locked() noexcept { return std::exchange(error_, nullptr); }
  bool failed_locked() const noexcept { return failed_; }  // a fail-fast group stopped on an error
  void admit_pending_locked() noexcept;

  // What live_tasks() calls the group ("Yielder", ...); a string literal. Never suspends.
  void set_kind(const char* kind) noexcept { live_.kind.store(kind, std::memory_order_relaxed); }

 private:
  void submit(TaskBase* task);
  bool try_admit_locked() noexcept;
  void release_locked() noexcept;

  mutable std::mutex m_;
  ParkQueue joiners_;            // woken when count_ reaches 0
  std::size_t stack_size_;
  std::size_t limit_;
  std::optional<Semaphore> slots_;
  StreamGate* gate_;
  bool fail_fast_;
  bool failed_ = false;
  bool stop_counted_ = false;    // this generation's stop is counted by count_stop_source
  std::size_t count_ = 0;        // spawned and not finished, pending included
  std::size_t dropped_ = 0;      // see dropped_exceptions()
  std::exception_ptr error_;     // first error not yet rethrown
  std::stop_source stop_;        // shared by the tasks of this "generation" (until join returns)
  TaskQueue pending_;            // spawned, not admitted yet
  LiveGroupEntry live_{this};    // last: leaves the registry before anything else goes
};

template <class Sink, class F, class... Args>
std::stop_token Task<Sink, F, Args...>::group_token() const noexcept {
  return group_->task_token();
}

}  // namespace fiberutils::detail
