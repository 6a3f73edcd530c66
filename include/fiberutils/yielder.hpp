// SPDX-License-Identifier: Apache-2.0
//
// fu::Yielder<T>: tasks whose results stream out, in the order they finish, to a `for` loop.
//
// spawn(f, args...) follows Group::spawn's rules; what f returns decides what is yielded: a T
// (or anything convertible to T) is yielded, a std::optional<T> is yielded when engaged, void
// yields nothing. put(v) yields a value explicitly, from the owner or from any task. Iterating
// waits for the next value while the tasks run, and ends when every task has finished and every
// value has been consumed; then it rethrows the first exception a task threw (a task's
// exception does not cut the stream short). With a limit, at most `limit` task bodies run at
// once, with Pool's rules.
//
// - Suspends: iteration (operator* and the comparison with end(); never operator++), a
//   cancellation point inside a task. Never suspends: spawn(), put() (a cancellation point
//   inside a task all the same), cancel(), size().
// - Memory: values wait in a bounded buffer; while it holds kStreamCapacity (1024) values not
//   consumed, queued tasks are not started (they hold no stack), so a slow consumer bounds
//   memory. The owner may spawn or put any amount before it starts iterating.
// - Thread-safe: spawn(), put(), cancel(), size() from any thread and fiber; one consumer
//   iterates at a time: a second fiber that iterates while the first waits for a value gets
//   std::logic_error. Tasks run on the thread that spawned them (under a fu::Workers, on any of
//   its threads).
// - cancel() requests stop on every task and ends the iteration without an error: the loop's
//   next operator* or comparison with end() finds the end, also when values are buffered (they
//   are discarded, never delivered). Tasks held back for room in a full buffer do not start
//   after a cancel: they stay counted in size() until the destructor lets them end.
// - dropped_exceptions(): as Group's, the exceptions after the first that the loop will not rethrow.
// - Destructor: requests stop on unfinished tasks and suspends until they have finished; values
//   not consumed are discarded. Not copyable or movable (tasks refer to it): return one from a
//   function as the prvalue of fu::yielding().
//
// Example:
//   fu::Yielder<char> y;
//   for (char c : std::string("abcdefg")) y.spawn([](char c) { sleep_a_little(); return c; }, c);
//   for (char c : y) std::cout << c;   // "abcdefg" in completion order
//
//   auto letters() {   // the Python original's generator function with `yielding()`
//     return fu::yielding<char>([](fu::Yielder<char>& y) { y.spawn(f, 'a'); y.put('z'); });
//   }
//   for (char c : letters()) ...
#pragma once

#include <cstddef>
#include <ranges>
#include <utility>

#include <fiberutils/detail/stream.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils {

template <class T>
class Yielder : public detail::BasicStream<Yielder<T>, T, false> {
 public:
  // Yielder() runs any number of tasks at once; Yielder(n) at most n (n >= 1, else
  // std::invalid_argument); Yielder(n, StackSize{bytes}) with stacks of that size.
  //
  // spawn(f, args...): Group::spawn's rules; f's result is yielded (see above). Never suspends.
  // put(v) yields v. Never suspends; inside a task, a cancellation point.
  // cancel(), size(), dropped_exceptions(): see above. Never suspend.
  using detail::BasicStream<Yielder<T>, T, false>::BasicStream;
};

// yielding<T>(body) / yielding<T>(limit, body): a Yielder<T> whose `body(y)` runs as a task that
// does not count against the limit; returned to be drained lazily, like the Python original's
// `with yielding() as y:` generator functions.
template <class T, class Body>
Yielder<T> yielding(Body&& body) {
  return Yielder<T>(detail::BodyTag{}, 0, std::forward<Body>(body));
}
template <class T, class Body>
Yielder<T> yielding(std::ptrdiff_t limit, Body&& body) {
  return Yielder<T>(detail::BodyTag{}, detail::checked_limit(limit, "fiberutils: a stream"),
                    std::forward<Body>(body));
}

}  // namespace fiberutils

// size() counts unfinished tasks, not the values still to come: without this, std::ranges would
// take a stream for a sized range and ranges::size / ranges::distance would return the task count.
template <class T>
inline constexpr bool std::ranges::disable_sized_range<fiberutils::Yielder<T>> = true;
