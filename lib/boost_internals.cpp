// SPDX-License-Identifier: Apache-2.0
#include "boost_internals.hpp"

#include "fast_tls.hpp"

#include <atomic>

#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/scheduler.hpp>

namespace fiberutils::detail::boost_internals {

Fiber* active() noexcept { return boost::fibers::context::active(); }

void arm(Fiber* f, std::intptr_t marker) noexcept {
  f->twstatus.store(marker, std::memory_order_release);
}

bool claim(Fiber* f, std::intptr_t marker) noexcept {
  return f->twstatus.compare_exchange_strong(marker, -1, std::memory_order_acq_rel,
                                             std::memory_order_acquire);
}

std::intptr_t disarm(Fiber* f) noexcept { return f->twstatus.exchange(0, std::memory_order_acq_rel); }

std::intptr_t disarm_resumed(Fiber* f) noexcept {
  const std::intptr_t was = f->twstatus.load(std::memory_order_acquire);
  f->twstatus.store(0, std::memory_order_relaxed);
  return was;
}

namespace {
FIBERUTILS_FAST_TLS thread_local boost::fibers::scheduler* this_thread_scheduler = nullptr;
}  // namespace

void schedule(Fiber* f) noexcept {
  boost::fibers::scheduler* here = this_thread_scheduler;
  if (!here) here = this_thread_scheduler = boost::fibers::context::active()->get_scheduler();
  boost::fibers::scheduler* const theirs = f->get_scheduler();
  if (theirs == here)
    here->schedule(f);
  else
    theirs->schedule_from_remote(f);
}

void suspend(Fiber* self) noexcept { self->suspend(); }

void suspend_until(Fiber* self, const std::chrono::steady_clock::time_point& tp) noexcept {
  (void)self->wait_until(tp);
}

namespace {
const char kRunnerKey = 0;

struct NoCleanup final : boost::fibers::detail::fss_cleanup_function {
  void operator()(void*) override {}
};

const boost::fibers::detail::fss_cleanup_function::ptr_t& no_cleanup() {
  static const boost::fibers::detail::fss_cleanup_function::ptr_t fn{new NoCleanup};
  return fn;
}
}  // namespace

void set_runner_slot(void* data) noexcept {
  // set_fss_data allocates a map node the first time a fiber uses the slot; a runner sets it
  // once at its start, where running out of memory terminates (as Boost's own fiber start does).
  boost::fibers::context::active()->set_fss_data(&kRunnerKey, no_cleanup(), data, false);
}

bool is_main_fiber(Fiber* f) noexcept { return f->is_context(boost::fibers::type::main_context); }

void* runner_slot(Fiber* f) noexcept { return f->get_fss_data(&kRunnerKey); }

namespace {
using AlgoPtr = boost::intrusive_ptr<boost::fibers::algo::algorithm>;
struct AlgoMember {
  using type = AlgoPtr boost::fibers::scheduler::*;
  friend type algo_member(AlgoMember);
};
template <class Tag, typename Tag::type M>
struct MemberOf {
  friend typename Tag::type algo_member(Tag) { return M; }
};
template struct MemberOf<AlgoMember, &boost::fibers::scheduler::algo_>;
}  // namespace

AlgoPtr swap_algorithm(AlgoPtr next) noexcept {
  boost::fibers::scheduler* s = boost::fibers::context::active()->get_scheduler();
  AlgoPtr previous = s->*algo_member(AlgoMember{});
  s->set_algo(std::move(next));
  return previous;
}

bool on_dispatcher() noexcept {
  return boost::fibers::context::active()->is_context(boost::fibers::type::dispatcher_context);
}

}  // namespace fiberutils::detail::boost_internals
