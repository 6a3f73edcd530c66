// SPDX-License-Identifier: Apache-2.0
//
// fu::cancelled: what a cancellation point throws once the calling task's stop was requested.
//
// It deliberately does not derive from std::exception, so `catch (std::exception const&)` in user
// code does not swallow a cancellation by accident. A task that ends by `cancelled` is not an
// error: `join()` does not rethrow it and no destructor reports it.
//
// A plain exception type: nothing here suspends, blocks or needs synchronisation.
#pragma once

namespace fiberutils {

struct cancelled {
  const char* what() const noexcept { return "fiberutils: task cancelled"; }
};

}  // namespace fiberutils
