// SPDX-License-Identifier: Apache-2.0
//
// Internal: executors, where admitted tasks go to run.
//
// A TaskGroup decides *whether* a task may start (its count, its limit, a stream's room); an
// Executor decides *where and when*: it queues the task and has a runner fiber take it. Two
// implementations share one runner machinery (executor.cpp):
// - ThreadRunners: per-thread runner fibers on the thread that admitted the task (the default);
// - SharedRunners: the threads of a fu::Workers, whose runners take tasks from one shared queue.
//   A queued task holds no stack, so any of those threads may start it; once started it runs to
//   its end on that thread (runners never migrate).
// A thread may install another executor for the tasks admitted on it; groups and streams do not
// change.
#pragma once

#include <cstddef>
#include <memory>

#include <fiberutils/detail/task.hpp>

namespace fiberutils::detail {

class Executor {
 public:
  // enqueue(task, stack_size) takes an admitted task; a runner fiber of this executor with a
  // stack of stack_size bytes runs it, then reports to task->group_. Never suspends. Throws
  // std::bad_alloc, with nothing queued, when no runner could be started.
  virtual void enqueue(TaskBase* task, std::size_t stack_size) = 0;

 protected:
  ~Executor() = default;
};

// The executor that takes tasks admitted on the calling thread: the one that thread installed,
// else the thread's own runners. The one place that decides where a task runs.
Executor& current_executor();

// Makes `e` the calling thread's executor (nullptr: back to the thread's own runners) and
// returns the previous one. Never suspends.
Executor* install_executor(Executor* e) noexcept;

// The executor behind fu::Workers (lib/workers.cpp drives its threads). Every member is called
// by one of its threads, as described; the queue and every runner's state are under one mutex.
class SharedRunners final : public Executor {
 public:
  SharedRunners();
  ~SharedRunners();
  SharedRunners(const SharedRunners&) = delete;
  SharedRunners& operator=(const SharedRunners&) = delete;

  // True when the calling thread belongs to some SharedRunners.
  static bool thread_belongs_to_one() noexcept;

  // join_owner() makes the calling thread the owner: one of the threads, with this executor
  // installed. Never suspends.
  void join_owner();
  // serve() makes the calling (helper) thread one of the threads and runs its runners until
  // stop(); returns when they have all ended. Blocks the thread (it is the helper's whole life).
  void serve();
  // wait_for_threads(n), on the owner thread: suspends the calling fiber until n threads (the
  // owner included) have joined, so that a task spawned afterwards can start on any of them.
  void wait_for_threads(std::size_t n) noexcept;
  // drain_and_stop(), on the owner thread: suspends the calling fiber until no task is queued
  // or running, then tells every thread to stop, puts the owner's previous executor back and
  // suspends until the owner's runners have ended. Helpers return from serve() meanwhile.
  void drain_and_stop() noexcept;
  // stop_now(), on the owner thread: as drain_and_stop() without the wait for tasks; for a
  // constructor that failed before any task could be spawned.
  void stop_now() noexcept;

  void enqueue(TaskBase* task, std::size_t stack_size) override;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace fiberutils::detail
