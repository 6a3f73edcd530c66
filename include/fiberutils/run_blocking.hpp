// SPDX-License-Identifier: Apache-2.0
//
// fu::run_blocking: call something that blocks the thread (a file read, DNS, a database driver,
// a legacy C API, std::this_thread::sleep_for) without stalling the other tasks of the thread.
//
// run_blocking(f, args...) hands std::invoke(f, args...) to a pool of OS threads owned by the
// library and suspends only the calling fiber until the call has returned; the other fibers of
// the calling thread keep running meanwhile. It returns what f returned, or rethrows what f threw.
//
// - Suspends: run_blocking() (the calling fiber; from plain code, the thread's main fiber, which
//   lets that thread's tasks run). Never suspends: set_blocking_threads().
// - Blocks the thread: nothing, beyond short internal critical sections (and the creation of a
//   pool thread while the pool grows).
// - Thread-safe: both functions, from any thread, any fiber, any task (a stream's included).
// - Cancellation: inside a task, run_blocking() is a cancellation point. When the task's stop is
//   requested before or while it waits, it throws fu::cancelled at once. A call that has not
//   started yet (the pool was at its maximum) is withdrawn and never starts; a call that has
//   started cannot be interrupted: it finishes on its pool thread and its result (or exception)
//   is discarded. f and args are decay-copied (std::ref passes a reference, which must then
//   outlive the call, not only the task) and destroyed on the pool thread when the call
//   returns, so nothing the call uses dangles once the task has moved on.
// - The pool: started lazily by the first call, it grows by one thread per call that finds no
//   idle thread, up to its maximum (set_blocking_threads, default 64, meson option
//   blocking_threads); calls beyond it queue and start in FIFO order. An idle thread takes the
//   next call (no thread is created per call once warm); a thread idle for 10 s ends.
// - Program exit: once static destruction reaches the point where the first run_blocking() was
//   made (std::exit destroys in reverse order), the pool takes no more calls, queued calls never
//   start, idle threads end, and the exit waits for calls still running to return, then joins
//   every pool thread (as Python's concurrent.futures does): no thread outlives the library, and
//   statics constructed before the first call are still alive for a call that is finishing. So a
//   call that never returns holds the exit forever: give blocking calls a timeout. (The main
//   thread's tasks have finished before: its runners end first, and a task waiting in
//   run_blocking() is waited for then.) A run_blocking() made later in static destruction runs f
//   on the calling thread.
// - f must not wait for other run_blocking() calls to finish when the pool may be at its
//   maximum: a call queued behind the caller's own pool thread would never start.
//
// Example:
//   fu::Pool p(8);
//   for (const std::string& path : paths)
//     p.spawn([&sizes](std::string path) {
//       sizes[path] = fu::run_blocking(read_file_size, path);  // other tasks run meanwhile
//     }, path);
//   p.join();
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <fiberutils/detail/park.hpp>

namespace fiberutils {

// set_blocking_threads(n) sets the most threads the run_blocking() pool may have. Must be called
// before the first run_blocking() of the process; afterwards it throws std::logic_error. n == 0
// throws std::invalid_argument. Never suspends; thread-safe.
void set_blocking_threads(std::size_t n);

namespace detail {

// A call handed to the pool. Shared by the waiting fiber and the pool thread (std::shared_ptr),
// so that a waiter that was cancelled and has unwound leaves the pool thread nothing dangling.
class BlockingCall {
 public:
  BlockingCall() = default;
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;
  virtual ~BlockingCall() = default;

  // Runs on a pool thread, once: invokes f, keeps its result or exception, destroys f and args.
  virtual void invoke() noexcept = 0;

  enum State : int { queued, running, done, withdrawn };
  std::atomic<int> state_{queued};  // queued -> running -> done, or queued -> withdrawn
  std::mutex m_;                    // guards waiter_ and the wake-up at `done`
  ParkQueue waiter_;                // the waiting fiber
  std::exception_ptr error_;        // what f (or a destructor of its copies) threw
};

// Hands `call` to the pool and suspends until it is done; rethrows its error. Cancellation point
// (withdraws a call that has not started). Throws std::system_error when the pool has no thread
// and none could be started.
void run_on_blocking_pool(const std::shared_ptr<BlockingCall>& call);

// What run_blocking returns; void for a call that is not invocable, so that run_blocking's
// static_assert, not a failed overload resolution, tells the user what is wrong.
template <class F, class... Args>
struct blocking_result {
  using type = void;
};
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
struct blocking_result<F, Args...> {
  using type = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
};
template <class F, class... Args>
using blocking_result_t = typename blocking_result<F, Args...>::type;

template <class R, class F, class... Args>
class BlockingCallOf final : public BlockingCall {
 public:
  template <class Fw, class... Aw>
  explicit BlockingCallOf(Fw&& f, Aw&&... args)
      : fn_(std::in_place, std::forward<Fw>(f), std::forward<Aw>(args)...) {}

  void invoke() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        std::apply([](auto& f, auto&... a) { std::invoke(std::move(f), std::move(a)...); }, *fn_);
      } else if constexpr (std::is_reference_v<R>) {
        result_.emplace(&std::apply(
            [](auto& f, auto&... a) -> R { return std::invoke(std::move(f), std::move(a)...); },
            *fn_));
      } else {
        result_.emplace(std::apply(
            [](auto& f, auto&... a) -> R { return std::invoke(std::move(f), std::move(a)...); },
            *fn_));
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    // The copies go now, on the pool thread: nothing the caller gave outlives the call.
    try {
      fn_.reset();
    } catch (...) {
      if (!error_)
        error_ = std::current_exception();
    }
  }

  R take() {
    if constexpr (std::is_reference_v<R>)
      return static_cast<R>(**result_);
    else if constexpr (!std::is_void_v<R>)
      return std::move(*result_);
  }

 private:
  using Stored =
      std::conditional_t<std::is_reference_v<R>, std::add_pointer_t<std::remove_reference_t<R>>, R>;
  std::optional<std::tuple<std::decay_t<F>, std::decay_t<Args>...>> fn_;
  [[no_unique_address]] std::conditional_t<std::is_void_v<R>, std::tuple<>, std::optional<Stored>>
      result_;
};

}  // namespace detail

// run_blocking(f, args...) runs std::invoke(f, args...) on a thread of the library's pool and
// suspends the calling fiber until it returns (see the top of this header for the pool, exit
// and what a stop does).
//   Effects: f and args are decay-copied; the call runs on a pool thread, with the copies passed
//            as rvalues (as std::thread does), and they are destroyed there when it returns.
//   Returns: what f returned (a reference stays a reference).
//   Throws:  what f threw; fu::cancelled when the calling task's stop was requested before or
//            while it waited (the call, if started, finishes unobserved); std::bad_alloc;
//            std::system_error when no pool thread exists and none could be started.
// Cancellation point.
template <class F, class... Args>
detail::blocking_result_t<F, Args...> run_blocking(F&& f, Args&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "fiberutils: run_blocking(f, args...) needs f callable as f(args...) with "
                "decay-copied arguments");
  if constexpr (std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>) {
    using R = detail::blocking_result_t<F, Args...>;
    using Call = detail::BlockingCallOf<R, F, Args...>;
    auto call = std::make_shared<Call>(std::forward<F>(f), std::forward<Args>(args)...);
    detail::run_on_blocking_pool(call);
    if constexpr (!std::is_void_v<R>)
      return call->take();
  }
}

}  // namespace fiberutils
