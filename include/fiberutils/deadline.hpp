// SPDX-License-Identifier: Apache-2.0
//
// Deadline scopes: fu::move_on_after / move_on_at and fu::fail_after / fail_at (trio's
// move_on_after and fail_after, gevent's Timeout, Go's context.WithTimeout).
//
//   std::optional<R> r = fu::move_on_after(2s, [&] { return fetch(url); });  // nullopt: too late
//   R r = fu::fail_after(2s, [&] { return fetch(url); });                   // fu::timed_out
//   bool done = fu::move_on_after(2s, [&] { work(); });                       // void f: false if too late
//
// They run f() on the calling fiber (in a task or in plain code). When the deadline passes, every
// cancellation point inside f (the library's waits: sleep, yield, join, Semaphore, Pool::
// wait_available, stream iteration and put, run_blocking, fu::use_fiber IO) throws fu::cancelled, waking a wait in
// progress; the scope catches it and returns std::nullopt (false for a void f) or throws
// fu::timed_out. Inside f, this_task::stop_requested() and this_task::stop_token() (obtained
// inside f) report the deadline too, so a CPU loop that polls them stops; a token obtained before
// the scope does not.
//
// - The deadline acts only through cancellation points: an f that returns normally after the
//   deadline without reaching one returns its value.
// - Scopes nest: the earliest deadline wins, and only the scope whose deadline passed catches.
//   A stop from outside (the group's cancel(), a stream's destructor, fail-fast, an outer
//   scope's deadline) is never turned into nullopt or timed_out: it propagates as fu::cancelled.
// - A group created inside f is stopped by the deadline through its own join() (a cancellation
//   point) and destructor, so nothing spawned inside the scope outlives it.
// - Cost: entering and leaving a scope that does not expire takes no timer and no allocation.
//
// Suspends: only what f suspends. Blocks the thread: never. Thread-safety: a scope belongs to the
// calling fiber; f may hand work to other threads as usual.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/deadline_scope.hpp>

namespace fiberutils {

// What fail_after / fail_at throw when their deadline came first; what() names the duration.
class timed_out : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_timed_out(std::chrono::steady_clock::duration d);

template <class C, class D>
std::chrono::steady_clock::time_point to_steady(std::chrono::time_point<C, D> tp) {
  if constexpr (std::is_same_v<C, std::chrono::steady_clock>)
    return std::chrono::time_point_cast<std::chrono::steady_clock::duration>(tp);
  else
    return std::chrono::steady_clock::now() +
           std::chrono::ceil<std::chrono::steady_clock::duration>(tp - C::now());
}

template <class F>
using scope_result_t = std::invoke_result_t<std::decay_t<F>&>;
}  // namespace detail

// move_on_at(tp, f): f(), or nothing when tp came first (std::optional<R>; bool for void f).
template <class C, class D, class F>
auto move_on_at(std::chrono::time_point<C, D> tp, F&& f) {
  using R = detail::scope_result_t<F>;
  using Out = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
  detail::DeadlineScope scope(detail::to_steady(tp));
  try {
    if constexpr (std::is_void_v<R>) {
      std::invoke(f);
      return Out(true);
    } else {
      return Out(std::invoke(f));
    }
  } catch (const cancelled&) {
    if (!scope.caught_here()) throw;
  }
  if constexpr (std::is_void_v<R>)
    return Out(false);
  else
    return Out(std::nullopt);
}

template <class Rep, class Period, class F>
auto move_on_after(std::chrono::duration<Rep, Period> d, F&& f) {
  return move_on_at(std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(d),
                    std::forward<F>(f));
}

// fail_at(tp, f): f(), or fu::timed_out when tp came first.
template <class C, class D, class F>
detail::scope_result_t<F> fail_at(std::chrono::time_point<C, D> tp, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = detail::to_steady(tp);
  {
    detail::DeadlineScope scope(deadline);
    try {
      return std::invoke(f);
    } catch (const cancelled&) {
      if (!scope.caught_here()) throw;
    }
  }
  detail::throw_timed_out(deadline - start);
}

template <class Rep, class Period, class F>
detail::scope_result_t<F> fail_after(std::chrono::duration<Rep, Period> d, F&& f) {
  const auto steady = std::chrono::ceil<std::chrono::steady_clock::duration>(d);
  {
    detail::DeadlineScope scope(std::chrono::steady_clock::now() + steady);
    try {
      return std::invoke(f);
    } catch (const cancelled&) {
      if (!scope.caught_here()) throw;
    }
  }
  detail::throw_timed_out(steady);
}

}  // namespace fiberutils
