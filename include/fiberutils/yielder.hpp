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
//   iterates at a time. Tasks run on the thread that spawned them.
// - cancel() requests stop on every task and ends the iteration without an error: the loop's
//   next operator* or comparison with end() finds the end, also when values are buffered (they
//   are discarded, never delivered). Tasks held back for room in a full buffer do not start
//   after a cancel: they stay counted in size() until the destructor lets them end.
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
#include <functional>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <fiberutils/detail/stream.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils {

namespace detail {
struct BodyTag {};

inline std::ptrdiff_t checked_stream_limit(std::ptrdiff_t limit) {
  if (limit < 1) throw std::invalid_argument("fiberutils: a stream's limit must be at least 1");
  return limit;
}

// Runs a yielding() body as a task that holds no slot.
template <class Stream, class Body>
void spawn_body(Stream& s, Body&& body) {
  static_assert(std::is_invocable_v<std::decay_t<Body>&, Stream&>,
                "fiberutils: a yielding body must be callable as body(stream&)");
  s.spawn_body_task([&s, b = std::forward<Body>(body)]() mutable { std::invoke(b, s); });
}
}  // namespace detail

template <class T>
class Yielder : public detail::StreamCore<T> {
  using Core = detail::StreamCore<T>;

 public:
  // Yielder() runs any number of tasks at once; Yielder(n) at most n (n >= 1, else
  // std::invalid_argument).
  Yielder() : Core(0, default_stack_size()) {}
  explicit Yielder(std::ptrdiff_t limit, StackSize stack = default_stack_size())
      : Core(detail::checked_stream_limit(limit), stack) {}
  // Used by fu::yielding(): `body(*this)` runs as a task that holds no slot.
  template <class Body>
  Yielder(detail::BodyTag, std::ptrdiff_t limit, Body&& body) : Core(limit, default_stack_size()) {
    detail::spawn_body(*this, std::forward<Body>(body));
  }
  ~Yielder() override {
    this->cancel_for_destruction();  // discards unconsumed values, lets held-back tasks end
    this->shutdown();
  }

  // spawn(f, args...): Group::spawn's rules; f's result is yielded (see above). Never suspends.
  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    FIBERUTILS_CHECK_STREAM_SPAWN(T, F, Args);
    this->spawn_with(Sink{this}, std::forward<F>(f), std::forward<Args>(args)...);
  }

  // put(v) yields v. Never suspends; inside a task, a cancellation point.
  void put(T v) {
    Core::check_put_allowed();
    std::lock_guard<std::mutex> lk(this->m_);
    this->deliver_locked(std::move(v));
  }

  // cancel(): see above. Never suspends.
  void cancel() noexcept { this->cancel_stream(); }

 private:
  template <class Stream, class Body>
  friend void detail::spawn_body(Stream&, Body&&);
  template <class Body>
  void spawn_body_task(Body&& body) {
    this->spawn_with(detail::BodySink{}, std::forward<Body>(body));
  }

  struct Sink {
    static constexpr bool kAdmitted = true;
    Yielder* y;
    template <class R>
    void deliver(R&& r) {
      if constexpr (detail::is_optional_v<std::remove_cvref_t<R>>) {
        if (r) y->deliver(T(std::move(*r)));
      } else {
        y->deliver(T(std::forward<R>(r)));
      }
    }
    void deliver_nothing() noexcept {}
    void abandon_if_undelivered() noexcept {}
  };

  void deliver(T&& v) {
    std::lock_guard<std::mutex> lk(this->m_);
    this->deliver_locked(std::move(v));
  }
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
  return Yielder<T>(detail::BodyTag{}, detail::checked_stream_limit(limit),
                    std::forward<Body>(body));
}

}  // namespace fiberutils

// size() counts unfinished tasks, not the values still to come: without this, std::ranges would
// take a stream for a sized range and ranges::size / ranges::distance would return the task count.
template <class T>
inline constexpr bool std::ranges::disable_sized_range<fiberutils::Yielder<T>> = true;
