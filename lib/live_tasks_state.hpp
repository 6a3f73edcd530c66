// SPDX-License-Identifier: Apache-2.0
//
// Internal: what fu::live_tasks() reads (lib/live_tasks.cpp), and what keeps it up to date.
//
// A started task is seen through its runner: each runner fiber has a RunnerRecord on its own
// stack, linked into its thread's ThreadRecord once, when the runner starts (runners are reused
// for many tasks and created rarely). Starting and ending a task, and entering and leaving a
// park, only store into the runner's record with relaxed atomics (plain stores on x86): no lock,
// no allocation, and no clock read on spawn, start or end. Parks read the coarse clock (a park
// costs a fiber switch already) and leave it in the thread's `tick`; a task's start is stamped
// with that tick, not with a clock read of its own: under load the coarse clock took 5-15 ns
// here, 10-20% of a whole spawn+join (W1). So a running task's in_state_for counts from the last
// park of any runner of its thread before it started (an idle runner's wake-up included): exact
// for tasks started by a burst after a wait, longer by the run time of tasks that ran before it
// on the thread without parking. A dump locks
// each ThreadRecord to walk its runners; a runner leaves its ThreadRecord under that lock, so a
// dump never reads a record that is gone, and never dereferences a task or a group through it.
//
// A queued task (waiting for a slot, for room in a stream, or for a runner) has no runner: a dump
// counts it from its group (LiveGroupEntry, task_group.hpp): the group's count minus its
// started tasks.
//
// Lock order (no cycles): threads registry -> ThreadRecord::m; groups registry -> a group's
// mutex. A group's mutex may be held while a ThreadRecord is made (the first task admitted on a
// thread makes its runners), so a dump never holds both registries at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task.hpp>

#include "boost_internals.hpp"
#include "fiber_state.hpp"

namespace fiberutils::detail {

class TaskGroup;
class ThreadRecord;

// CLOCK_MONOTONIC_COARSE in ns: a few ns through the vDSO, against ~20 ns for steady_clock;
// its resolution (a jiffy, 1-4 ms) is plenty for "in this state for". The same clock as
// steady_clock (CLOCK_MONOTONIC), only read at the last tick.
inline std::int64_t coarse_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline constexpr std::uint8_t kNotWaiting = 0xff;

// What a runner fiber knows about itself; found through the fiber's runner slot. Fields marked
// "own fiber" are touched only by the runner itself; the atomics are written by it and read by
// dumps on any thread; `name` and the links are under thread->m.
struct RunnerRecord : FiberState {                // current, scope: own fiber
  RunnerRecord() noexcept { is_runner = true; }
  bool named = false;                             // own fiber: name is not empty
  std::atomic<const TaskGroup*> group{nullptr};   // the running task's group; nullptr: idle
  std::atomic<std::uint8_t> wait{kNotWaiting};    // a WaitKind while parked in a task
  std::atomic<std::int64_t> since{0};             // coarse_now_ns() of the last state change
  std::string name;                               // this_task::set_name(); thread->m
  ThreadRecord* thread = nullptr;
  RunnerRecord* prev = nullptr;                   // thread->m
  RunnerRecord* next = nullptr;

  inline void task_started(TaskBase* t) noexcept;
  void task_ended() noexcept {
    if (named) clear_name();
    group.store(nullptr, std::memory_order_release);
    current = nullptr;
  }
  void clear_name() noexcept;
};

// The runners of one thread, for dumps. thread_local, made before the thread's runners (see
// ThreadRunners) so that it outlives them.
class ThreadRecord {
 public:
  static ThreadRecord& here();
  ThreadRecord();
  ~ThreadRecord();
  ThreadRecord(const ThreadRecord&) = delete;
  ThreadRecord& operator=(const ThreadRecord&) = delete;

  // A runner's start and end, on this thread. Never suspend; lock m for a moment.
  void add(RunnerRecord& r) noexcept;
  void remove(RunnerRecord& r) noexcept;

  std::mutex m;
  const std::thread::id id;
  std::atomic<std::int64_t> tick;  // coarse_now_ns() at the last park boundary of a runner here
  RunnerRecord* runners = nullptr;  // m
  ThreadRecord* prev = nullptr;     // threads registry's mutex
  ThreadRecord* next = nullptr;
};

void RunnerRecord::task_started(TaskBase* t) noexcept {
  current = t;
  since.store(thread->tick.load(std::memory_order_relaxed), std::memory_order_relaxed);
  group.store(t->group_, std::memory_order_release);
}

// A park's note for live_tasks() (Park::wait): begin_wait_note marks the calling task as waiting
// in `kind`, end_wait_note marks it running again. `r`: the waiting fiber's runner record
// (runner_record()), nullptr outside a runner, where both do nothing. An idle runner (no task)
// only refreshes its thread's tick, when it wakes: no task starts on it before then.
inline std::int64_t stamp_thread_tick(RunnerRecord* r) noexcept {
  const std::int64_t now = coarse_now_ns();
  r->thread->tick.store(now, std::memory_order_relaxed);
  return now;
}

inline void begin_wait_note(RunnerRecord* r, WaitKind kind) noexcept {
  if (!r || !r->current) return;
  const std::int64_t now = stamp_thread_tick(r);
  r->since.store(now, std::memory_order_relaxed);
  r->wait.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
}

inline void end_wait_note(RunnerRecord* r) noexcept {
  if (!r) return;
  const std::int64_t now = stamp_thread_tick(r);
  if (!r->current) return;
  r->since.store(now, std::memory_order_relaxed);
  r->wait.store(kNotWaiting, std::memory_order_relaxed);
}

}  // namespace fiberutils::detail
