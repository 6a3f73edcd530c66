// SPDX-License-Identifier: Apache-2.0
//
// fu::StackSize: the fiber stack size a group's tasks run with.
//
// Every task runs on a stack of this many bytes (rounded up to whole pages), with a guard page
// under it while the process has guard pages to spare (see README, "Stacks"). The default is the
// meson option `default_stack_size_kib` (128 KiB unless the build says otherwise); it is cheap
// because a stack costs only the pages a task actually touches.
//
// default_stack_size() never suspends or blocks and is thread-safe; StackSize is a plain value.
//
// Example:
//   fu::Group deep(fu::StackSize{1024 * 1024});   // tasks that recurse deeply
#pragma once

#include <cstddef>

namespace fiberutils {

struct StackSize {
  std::size_t bytes;
};

// The stack size tasks get when their group names none.
StackSize default_stack_size() noexcept;

}  // namespace fiberutils
