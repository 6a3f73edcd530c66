// SPDX-License-Identifier: Apache-2.0
//
// fu::stack_stats(): counters of the fiber stacks fiberutils' runners use, process-wide, for
// tests, benchmarks and capacity checks (a task that has not started holds no stack, so `live`
// shows how many tasks are running or suspended at once).
//
// Never suspends; thread-safe (each counter is read under its pool's lock).
#pragma once

#include <cstddef>

namespace fiberutils {

struct StackStats {
  std::size_t live = 0;       // stacks in use by runner fibers now
  std::size_t peak_live = 0;  // high-water mark of `live` since start or reset_stack_peak()
  std::size_t mapped = 0;     // stacks ever created with mmap (the rest were reused)
  std::size_t guarded = 0;    // stacks now mapped (live or cached) that have a guard page
  std::size_t cached = 0;     // freed stacks kept mapped for reuse now
};

StackStats stack_stats() noexcept;

// reset_stack_peak() sets peak_live to the current live count.
void reset_stack_peak() noexcept;

}  // namespace fiberutils
