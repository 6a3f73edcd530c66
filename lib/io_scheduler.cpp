// SPDX-License-Identifier: Apache-2.0
//
// fu::IoScheduler: a Boost.Fiber scheduling algorithm that runs an io_context (see asio.hpp).
//
// A round-robin ready queue, as Boost's round_robin, plus Asio:
// - pick_next(), when the dispatcher fiber calls it (once per round of the ready fibers: Boost
//   keeps the dispatcher itself in the ready queue while others are ready), first runs up to
//   kHandlersPerRound ready handlers (io.poll_one): completions get through while fibers are
//   busy, and a stream of them cannot hold the fibers back.
// - suspend_until(deadline), called by the dispatcher when no fiber is ready, waits in io's
//   reactor (io.run_one) for one handler; the earliest fiber deadline is an Asio timer armed at
//   it (a timerfd in epoll, so a sleep ends on time, not rounded to epoll's milliseconds).
// - notify(), called by Boost when another thread makes one of our fibers ready, posts a no-op
//   into io, which ends the reactor wait.
// Handlers run on the dispatcher fiber only, never on a fiber in the middle of suspending.
#include <fiberutils/asio.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/scheduler.hpp>

#include "boost_internals.hpp"
#include "fast_tls.hpp"

namespace fiberutils {
namespace {

namespace bi = detail::boost_internals;
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// Handlers run per round of the ready fibers at most; the rest wait for the next round. Large
// enough that a round of thousands of connections is not paced by it, small enough that a
// handler that keeps posting itself cannot starve the fibers.
constexpr int kHandlersPerRound = 1024;

struct Noop {
  void operator()() const noexcept {}
  void operator()(const boost::system::error_code&) const noexcept {}
};

// One per thread, for the thread's life: Boost's scheduler calls notify() from other threads
// through its algorithm pointer without synchronising with set_algo, so an algorithm object
// that was current on this thread is never freed while the thread runs. Reused by every
// IoScheduler of the thread.
class IoAlgorithm final : public boost::fibers::algo::algorithm {
 public:
  struct Attached {
    net::io_context* io;
    net::steady_timer* timer;
  };

  void attach(Attached a) noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    a_ = a;
    armed_ = Clock::time_point::max();
  }
  void detach() noexcept {
    std::lock_guard<std::mutex> lk(mu_);
    a_ = {};
  }

  void awakened(boost::fibers::context* ctx) noexcept override { ctx->ready_link(ready_); }

  boost::fibers::context* pick_next() noexcept override {
    if (a_.io && bi::on_dispatcher()) {
      net::io_context& io = *a_.io;
      for (int i = 0; i < kHandlersPerRound; ++i) {
        if (io.poll_one() != 0) continue;
        // None ready, or io was stopped (which does not stop us): restart it and look again.
        // Asked only then, as stopped() takes io's lock: not once per round of the fibers.
        if (i > 0 || !io.stopped()) break;
        io.restart();
      }
    }
    if (ready_.empty()) return nullptr;
    boost::fibers::context* ctx = &ready_.front();
    ready_.pop_front();
    return ctx;
  }

  bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

  void suspend_until(const Clock::time_point& tp) noexcept override {
    if (!a_.io) return;  // not reached: detached only after Boost stopped calling us
    // A notify() since the dispatcher last looked at its remote ready queue: its posted no-op may
    // have been run by pick_next's poll_one already (after the dispatcher had looked, before the
    // fiber was queued), so blocking in run_one would lose the wake-up for good (seen: a thread
    // of the reuseport sample asleep in epoll_wait with a woken fiber queued). Return instead:
    // the dispatcher looks again.
    if (notified_.exchange(false, std::memory_order_acq_rel)) return;
    net::io_context& io = *a_.io;
    if (io.stopped()) io.restart();
    if (tp != Clock::time_point::max()) {
      // A deadline already passed (or its timer fired) returns at once: the dispatcher moves
      // the sleeper to the ready queue. Otherwise the timer armed at tp is pending.
      if (tp <= Clock::now()) return;
      if (tp != armed_) {
        a_.timer->expires_at(tp);  // ends the previous wait with operation_aborted: harmless
        a_.timer->async_wait(Noop{});
        armed_ = tp;
      }
    }
    io.run_one();
  }

  void notify() noexcept override {
    notified_.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lk(mu_);
    if (a_.io) net::post(*a_.io, Noop{});
  }

 private:
  boost::fibers::scheduler::ready_queue_type ready_;
  std::mutex mu_;  // a_ against notify() from other threads
  Attached a_{};
  Clock::time_point armed_ = Clock::time_point::max();
  std::atomic<bool> notified_{false};  // notify() came; cleared by suspend_until
};

// Read by every use_fiber operation: initial-exec, not a __tls_get_addr call per read.
FIBERUTILS_FAST_TLS thread_local IoScheduler* current_scheduler = nullptr;

IoAlgorithm& thread_algorithm(boost::intrusive_ptr<boost::fibers::algo::algorithm>& keep) {
  thread_local boost::intrusive_ptr<boost::fibers::algo::algorithm> algo{new IoAlgorithm};
  keep = algo;
  return static_cast<IoAlgorithm&>(*algo);
}

}  // namespace

struct IoScheduler::Impl {
  explicit Impl(net::io_context& io) : work(io.get_executor()), timer(io) {}
  net::executor_work_guard<net::io_context::executor_type> work;
  net::steady_timer timer;
  boost::intrusive_ptr<boost::fibers::algo::algorithm> mine;
  boost::intrusive_ptr<boost::fibers::algo::algorithm> previous;
};

IoScheduler::IoScheduler(net::io_context& io) : io_(io) {
  // Checked before anything touches io: a work guard made and dropped here would stop io.
  if (current_scheduler)
    throw std::logic_error("fiberutils: this thread already has an IoScheduler");
  std::unique_ptr<Impl> impl(new Impl(io));
  (void)bi::active();  // the thread's Boost scheduler exists before we swap its algorithm
  IoAlgorithm& algo = thread_algorithm(impl->mine);
  algo.attach({&io, &impl->timer});
  impl->previous = bi::swap_algorithm(impl->mine);
  impl_ = impl.release();
  current_scheduler = this;
}

IoScheduler::~IoScheduler() {
  (void)bi::swap_algorithm(std::move(impl_->previous));
  static_cast<IoAlgorithm&>(*impl_->mine).detach();
  current_scheduler = nullptr;
  delete impl_;
}

namespace detail {
void require_io_scheduler() {
  if (!current_scheduler)
    throw std::logic_error(
        "fiberutils: fu::use_fiber needs an fu::IoScheduler on this thread (nothing would run "
        "the io_context's handlers)");
}
}  // namespace detail

}  // namespace fiberutils
