// SPDX-License-Identifier: Apache-2.0
//
// fu::stack_stats(): counters of the fiber stacks fiberutils' runners use, process-wide, for
// tests, benchmarks and capacity checks.
//
// They count stacks, not tasks. A task runs on a runner fiber, and the runner owns the stack: a
// task that has not started holds none, and a runner whose task has ended parks, idle, keeping
// its stack for the next task. So `live` counts busy runners and parked idle ones: it stays above
// zero after every task has ended (after 12 tasks that slept at once it is still 12), until the
// thread exits or, past about 64 idle runners per thread and stack size, until the thread has no
// work left and ends the surplus (their stacks then count as `cached`). The tasks running or
// suspended are at most `live`; Group::size() counts a group's tasks.
//
// Never suspends; thread-safe (each counter is read under its pool's lock).
#pragma once

#include <cstddef>

namespace fiberutils {

struct StackStats {
  std::size_t live = 0;       // stacks held by runner fibers now, busy or parked idle
  std::size_t peak_live = 0;  // high-water mark of `live` since start or reset_stack_peak()
  std::size_t mapped = 0;     // stacks ever created with mmap (the rest were reused)
  std::size_t guarded = 0;    // stacks now mapped (live or cached) that have a guard page
  std::size_t cached = 0;     // free stacks no runner holds, kept mapped for reuse now
};

StackStats stack_stats() noexcept;

// reset_stack_peak() sets peak_live to the current live count.
void reset_stack_peak() noexcept;

}  // namespace fiberutils
