// SPDX-License-Identifier: Apache-2.0
//
// fu::cancelled: what a cancellation point throws once the calling task's stop was requested.
//
// It deliberately does not derive from std::exception, so `catch (std::exception const&)` in user
// code does not swallow a cancellation by accident. A task that ends by `cancelled` is not an
// error: `join()` does not rethrow it and no destructor reports it.
//
// Never swallow it. A `catch (...)` that does not rethrow catches it too, and a retry loop around
// a cancellation point then spins at 100% CPU forever after cancel(): every cancellation point
// throws again at once, and a join() after the cancel never returns. Catch std::exception, or
// catch `cancelled` first and rethrow it (a `catch (...)` that ends in `throw;` is fine too):
//
//   for (;;) {
//     try {
//       connect();                          // suspends inside: a cancellation point
//       return;
//     } catch (const fu::cancelled&) {
//       throw;                              // let the cancellation end the task
//     } catch (...) {
//       ++failures;                         // anything else: retry
//     }
//   }
//
// A loop with no cancellation point in it must call fu::this_task::yield() now and then, not only
// poll its stop token: until it suspends, nothing else runs on its thread, not even a join_for()
// whose deadline would cancel it.
//
// Only fiberutils' own waits are cancellation points (see this_task.hpp). Raw Boost.Fiber waits
// (boost::this_fiber::sleep_for, boost::fibers::mutex, condition_variable, channels, future::get)
// are not: cancel() does not wake them, and a task waiting in one sees its stop only when the
// wait ends by itself.
//
// A plain exception type: nothing here suspends, blocks or needs synchronisation.
#pragma once

namespace fiberutils {

struct cancelled {
  const char* what() const noexcept { return "fiberutils: task cancelled"; }
};

}  // namespace fiberutils
