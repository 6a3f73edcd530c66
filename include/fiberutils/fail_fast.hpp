// SPDX-License-Identifier: Apache-2.0
//
// fu::fail_fast: the constructor tag of groups that stop at their first error (Go's
// errgroup.WithContext, trio's nurseries, Python's asyncio.TaskGroup).
//
//   fu::Group g(fu::fail_fast);        fu::Pool p(8, fu::fail_fast);
//   fu::Yielder<T> y(8, fu::fail_fast);  fu::OrderedYielder<T> o(8, fu::fail_fast);
//
// The first exception a task throws (fu::cancelled aside) requests stop on every other task of
// the group, as cancel() does. Tasks that have not started their bodies by then never do: queued
// ones, ones waiting for a slot of a Pool or for room in a stream, and ones spawned afterwards
// until join() returns. join() then rethrows that first exception; a stream's loop rethrows it at
// its next step and discards the values still buffered. Later exceptions are counted by
// dropped_exceptions().
//
// A plain tag: nothing here suspends, blocks or needs synchronisation.
#pragma once

namespace fiberutils {

struct fail_fast_t {
  explicit fail_fast_t() = default;
};
inline constexpr fail_fast_t fail_fast{};

}  // namespace fiberutils
