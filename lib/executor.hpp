// SPDX-License-Identifier: Apache-2.0
//
// Internal: executors, where admitted tasks go to run.
//
// A TaskGroup decides *whether* a task may start (its count, its limit, a stream's room); an
// Executor decides *where and when*: it queues the task and has a runner fiber take it. Today's
// implementation is ThreadRunners (executor.cpp): per-thread runner fibers on the thread that
// admitted the task. A thread may install another executor for the tasks admitted on it (a set
// of threads sharing queued tasks, an Asio-driven thread); groups and streams do not change.
#pragma once

#include <cstddef>

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

}  // namespace fiberutils::detail
