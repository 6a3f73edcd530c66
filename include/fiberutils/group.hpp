// SPDX-License-Identifier: Apache-2.0
//
// fu::Group: spawn callables as fibers, spawn more from inside them, and join them all.
//
// A Group counts its tasks. spawn() adds one and returns at once; the task runs as a fiber on the
// calling thread's scheduler, starting the next time that thread's running fiber suspends (in
// join(), a sleep, a channel, ...). join() suspends the caller until the count is back to 0,
// including tasks spawned while it waits, then rethrows the first exception a task threw.
//
// - Suspends: join(), join_for(), join_until() (cancellation points inside a task).
//   Never suspends: spawn(), cancel(), size().
// - Blocks the thread: nothing, beyond short internal critical sections.
// - Thread-safe: every member, from any thread and any fiber. A task runs on the thread that
//   spawned it, so a thread that spawns must at some point suspend (join something, sleep, or
//   end: a thread's queued tasks are run before it exits). Under a fu::Workers (workers.hpp)
//   it starts on any of its threads and stays there.
// - Cancellation: cancel() requests stop on every unfinished task and on tasks spawned after it
//   until join() next returns. A task sees it as its std::stop_token and at the library's
//   cancellation points (fu::this_task), which throw fu::cancelled; a task that ends by
//   fu::cancelled is not an error.
// - Destructor: requests stop on unfinished tasks and suspends until they have finished; an
//   exception no join() observed is written to stderr. Not copyable, not movable: tasks refer
//   to their group.
//
// Example (the nested loops of the Python original, ~0.2 s instead of 11 s):
//   fu::Group g;
//   for (int i = 0; i < 10; ++i)
//     g.spawn([&g] {
//       fu::this_task::sleep_for(100ms);
//       for (int j = 0; j < 10; ++j) g.spawn([] { fu::this_task::sleep_for(100ms); });
//     });
//   g.join();
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/task_group.hpp>
#include <fiberutils/stack_size.hpp>

namespace fiberutils {

class Group {
 public:
  // Group() runs tasks on stacks of default_stack_size(); Group(StackSize{n}) on n bytes.
  Group() : Group(default_stack_size()) {}
  explicit Group(StackSize stack) : group_(stack, 0) {}
  // Group(fu::fail_fast): the first exception stops the other tasks (fiberutils/fail_fast.hpp).
  explicit Group(fail_fast_t, StackSize stack = default_stack_size())
      : group_(stack, 0, nullptr, true) {}

  // spawn(f, args...) runs std::invoke(f, args...) as a task, or f(stop_token, args...) when
  // f accepts the task's std::stop_token first (as std::jthread does). f and args are
  // decay-copied (std::ref passes a reference). Never suspends; what f returns is discarded.
  // Throws std::bad_alloc when out of memory, leaving the group unchanged.
  // A callable that fits neither form is a compile-time error that says so, and nothing else.
  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    if constexpr (!detail::task_invocable_v<F, Args...>)
      static_assert(detail::always_false_v<F>,
                    "fiberutils: spawn(f, args...) needs f callable as f(args...) or "
                    "f(std::stop_token, args...) with decay-copied arguments");
    else
      group_.spawn_with(detail::DiscardResult{}, std::forward<F>(f), std::forward<Args>(args)...);
  }

  // join() suspends the calling fiber until every task has finished, then rethrows the first
  // exception a task threw (and forgets it); the group can be used again. Several fibers and
  // threads may join at once. Throws std::logic_error when called from one of the group's own
  // tasks. Cancellation point.
  void join() { group_.join_until(std::nullopt); }

  // join_for(d) / join_until(tp): join() that gives up at the deadline, returning false (the
  // tasks go on). Returns true, or throws, as join() does.
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d) {
    return join_until(detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(d));
  }
  template <class C, class D>
  bool join_until(std::chrono::time_point<C, D> tp) {
    return group_.join_until(detail::Clock::now() +
                             std::chrono::ceil<detail::Clock::duration>(tp - C::now()));
  }

  // cancel() requests stop on every unfinished task, and on tasks spawned after it until join()
  // next returns. Never suspends.
  void cancel() noexcept { group_.cancel(); }

  // size() is the number of tasks spawned and not finished (running or waiting to start).
  std::size_t size() const noexcept { return group_.size(); }

  // dropped_exceptions() counts the exceptions tasks threw that no join() will rethrow: join()
  // rethrows the first of a generation, and every later one (until that join) is counted here
  // and destroyed. Never suspends.
  std::size_t dropped_exceptions() const noexcept { return group_.dropped_exceptions(); }

 protected:
  Group(StackSize stack, std::size_t limit, bool fail_fast) : group_(stack, limit, nullptr, fail_fast) {}
  detail::TaskGroup group_;  // last: its destructor waits for tasks while the rest is alive
};

}  // namespace fiberutils
