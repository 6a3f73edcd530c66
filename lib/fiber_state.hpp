// SPDX-License-Identifier: Apache-2.0
//
// Internal: what fiberutils knows about a fiber: the task it runs and its innermost deadline
// scope. A runner keeps one on its stack for its whole life; the main fiber of a thread has a
// thread_local one; any other fiber gets one from the deadline scope that needs it.
#pragma once

#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task.hpp>

#include "boost_internals.hpp"

namespace fiberutils::detail {

class DeadlineScope;

struct FiberState {
  TaskBase* current = nullptr;
  DeadlineScope* scope = nullptr;
  bool is_runner = false;  // this is a RunnerRecord (live_tasks_state.hpp)
};

struct RunnerRecord;
// The calling fiber's runner record, or nullptr when it is not a runner. `f`, when given, is the
// calling fiber (boost_internals::active()), for callers that hold it already.
RunnerRecord* runner_record() noexcept;
RunnerRecord* runner_record(boost_internals::Fiber* f) noexcept;

// The calling fiber's state, or nullptr for a fiber that is neither a runner, nor a thread's
// main fiber, nor inside a deadline scope. Never suspends. `f` as above.
FiberState* fiber_state() noexcept;
FiberState* fiber_state(boost_internals::Fiber* f) noexcept;

// What stops the calling fiber `self`, whose state is `s` (current_stop(), for callers that hold
// both already).
StopCondition stop_of(const FiberState* s, boost_internals::Fiber* self) noexcept;

// Makes `s` (nullptr: none) the calling fiber's state; a runner calls it at its start and end.
void set_fiber_state(FiberState* s) noexcept;

// Counts a thing that can stop a task in or out of live_stop_sources (this_task.hpp).
void count_stop_source(int delta) noexcept;

}  // namespace fiberutils::detail
