// SPDX-License-Identifier: Apache-2.0
//
// Internal: every use fiberutils makes of Boost.Fiber beyond its documented API, in one place.
//
// Boost.Fiber 1.74 documents fibers, their synchronisation primitives and scheduling algorithms,
// but not how to suspend the running fiber and resume it later from anywhere, which is what the
// park (detail/park.hpp) needs, nor where to keep per-fiber data cheaply. Both exist as public
// members of boost::fibers::context, used by Boost.Fiber's own primitives. Each function below
// says what it relies on and what would break if a Boost release changed it; test coverage:
// park_test (every wake-up path), executor_test, this_task_test.
#pragma once

#include <chrono>
#include <cstdint>

#include <boost/intrusive_ptr.hpp>

namespace boost::fibers {
class context;
namespace algo {
class algorithm;
}
}

namespace fiberutils::detail::boost_internals {

using Fiber = boost::fibers::context;

// The running fiber of the calling thread (Boost's thread-local context::active()). On a thread
// that never ran a fiber this creates the thread's Boost scheduler first (an allocation, once).
Fiber* active() noexcept;

// The "timed-wait status" word (context::twstatus) is how Boost's own timed waits settle the race
// between a timeout and a wake-up: the scheduler's sleep queue, when a deadline passes, exchanges
// it for -2 and resumes the fiber only if it was not -1; a waker claims a waiting fiber with a
// compare-and-swap from the wait's marker to -1 and then schedules it. Any value other than 0, -1
// and -2 works as a marker. If a Boost release dropped or changed this protocol, a timed park
// would be resumed twice (timeout and wake-up) or not at all: park_test's timed cases fail.
void arm(Fiber* f, std::intptr_t marker) noexcept;
// Claims the fiber for a wake-up: true for exactly one claimer of an armed wait, false when it
// was claimed already, timed out, or armed with another marker.
bool claim(Fiber* f, std::intptr_t marker) noexcept;
// Ends the wait: returns what the word held (-1 claimed, -2 timed out, else the marker).
std::intptr_t disarm(Fiber* f) noexcept;
// disarm() for a fiber that was resumed from its wait (by a claimer's schedule or by the sleep
// queue): nobody writes the word any more by then (a late claimer's compare-and-swap fails
// without writing; the sleep queue dropped the fiber before it was resumed), so a plain load
// and store do, where disarm() pays for a locked exchange.
std::intptr_t disarm_resumed(Fiber* f) noexcept;

// Makes a suspended fiber ready, from any thread: what context::schedule does (a fiber of this
// thread goes into its scheduler's ready queue; one of another thread through that thread's
// remote ready queue, which wakes its scheduler), without asking Boost for the running fiber,
// a call into Boost's shared library that reads a thread-local through __tls_get_addr: a
// spawn+join made twenty such calls. The calling thread's scheduler is kept in a thread-local of
// ours instead (made on first use: on a thread that runs no fibers, this creates its Boost
// scheduler, see active()); it lives as long as Boost's thread-locals, which ThreadRunners and
// IoScheduler construct before ours. Relies on scheduler::schedule and schedule_from_remote
// (public in scheduler.hpp) and on the comparison of schedulers context::schedule makes; the
// fiber must have been claimed and must not be the caller.
void schedule(Fiber* f) noexcept;
// Suspends `self`, the running fiber, until scheduled (context::suspend), or also until tp
// (context::wait_until: the fiber sits in the scheduler's sleep queue, see arm()).
void suspend(Fiber* self) noexcept;
void suspend_until(Fiber* self, const std::chrono::steady_clock::time_point& tp) noexcept;

// Per-fiber data for fiberutils' runners: one slot of context's fiber-specific storage (what
// boost::fibers::fiber_specific_ptr uses, here without its allocation per fiber), keyed by the
// address of a static of ours. The value is owned by the caller and cleared before the fiber
// ends (the slot's cleanup function does nothing).
void set_runner_slot(void* data) noexcept;
void* runner_slot(Fiber* f) noexcept;

// Whether f is its thread's main fiber (context::is_context(main_context)).
bool is_main_fiber(Fiber* f) noexcept;
// Replaces the calling thread's scheduling algorithm by `next` and returns the one it had, so
// that it can be put back (fu::IoScheduler). Boost's scheduler::set_algo is public and moves the
// ready fibers to the new algorithm, but the scheduler keeps its algorithm in a private member
// (scheduler::algo_) with no getter, and use_scheduling_algorithm<> only ever makes a new one.
// The member is read through a pointer to member formed in an explicit instantiation, where C++
// does not check access. If a Boost release renamed or retyped algo_, this stops compiling;
// io_scheduler_test's restore case checks the behaviour.
boost::intrusive_ptr<boost::fibers::algo::algorithm> swap_algorithm(
    boost::intrusive_ptr<boost::fibers::algo::algorithm> next) noexcept;

// True when the calling fiber is its thread's dispatcher (the fiber that runs the scheduling
// loop and, under fu::IoScheduler, Asio's handlers). context::is_context is public but
// undocumented.
bool on_dispatcher() noexcept;

}  // namespace fiberutils::detail::boost_internals
