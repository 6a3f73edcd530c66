// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/stack_size.hpp>

#include "fiberutils_config.hpp"

namespace fiberutils {

StackSize default_stack_size() noexcept { return StackSize{FIBERUTILS_DEFAULT_STACK_SIZE}; }

}  // namespace fiberutils
