// SPDX-License-Identifier: Apache-2.0
//
// fu::OrderedYielder<T>: a Yielder whose values come in the order of the spawn() and put()
// calls that produced them.
//
// A spawn takes its place in the order when spawn() is called, nested spawns from inside tasks
// included; a task that yields nothing (void, an empty optional, an exception, a cancel) holds
// its place until it finishes and is then skipped. Only values that wait for an earlier one are
// held back; everything else (suspension, memory, errors, cancellation, thread-safety,
// destructor) is as for fu::Yielder.
//
// Example (results in spawn order, whatever order the tasks finish in):
//   fu::OrderedYielder<std::string> pages(4);     // at most 4 fetches at once
//   for (auto& url : urls) pages.spawn(fetch, url);
//   for (std::string& body : pages) consume(body);
#pragma once

#include <cstddef>
#include <ranges>
#include <utility>

#include <fiberutils/detail/stream.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils {

template <class T>
class OrderedYielder : public detail::BasicStream<OrderedYielder<T>, T, true> {
 public:
  // Constructors, spawn(), put(), cancel(), size(), dropped_exceptions(): Yielder's, except that
  // spawn() and put() take their place in the order when they are called.
  using detail::BasicStream<OrderedYielder<T>, T, true>::BasicStream;
};

template <class T, class Body>
OrderedYielder<T> ordered_yielding(Body&& body) {
  return OrderedYielder<T>(detail::BodyTag{}, 0, std::forward<Body>(body));
}
template <class T, class Body>
OrderedYielder<T> ordered_yielding(std::ptrdiff_t limit, Body&& body) {
  return OrderedYielder<T>(detail::BodyTag{}, detail::checked_limit(limit, "fiberutils: a stream"),
                           std::forward<Body>(body));
}

}  // namespace fiberutils

// size() counts unfinished tasks, not the values still to come: without this, std::ranges would
// take a stream for a sized range and ranges::size / ranges::distance would return the task count.
template <class T>
inline constexpr bool std::ranges::disable_sized_range<fiberutils::OrderedYielder<T>> = true;
