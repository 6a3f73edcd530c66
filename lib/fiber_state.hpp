// SPDX-License-Identifier: Apache-2.0
//
// Internal: what fiberutils knows about a fiber: the task it runs and its innermost deadline
// scope. A runner keeps one on its stack for its whole life; the main fiber of a thread has a
// thread_local one; any other fiber gets one from the deadline scope that needs it.
#pragma once

#include <fiberutils/detail/task.hpp>

namespace fiberutils::detail {

class DeadlineScope;

struct FiberState {
  TaskBase* current = nullptr;
  DeadlineScope* scope = nullptr;
};

// The calling fiber's state, or nullptr for a fiber that is neither a runner, nor a thread's
// main fiber, nor inside a deadline scope. Never suspends.
FiberState* fiber_state() noexcept;

}  // namespace fiberutils::detail
