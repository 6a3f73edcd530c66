// SPDX-License-Identifier: Apache-2.0
//
// The pool behind fu::run_blocking (include/fiberutils/run_blocking.hpp).
//
// Pool threads are plain OS threads that run no fibers of ours; an idle one waits on its own
// std::condition_variable (a thread that has nothing else to run may block; the "every wait is a
// park" rule is about fibers). The waiting fiber parks on the call's ParkQueue; the pool thread
// wakes it under the call's mutex, which the waiter takes again before it looks at the result or
// leaves, so the Park is never touched after it is gone.
//
// Hand-off, not a shared wake-up: a submitter gives its call directly to the most recently idle
// thread (LIFO) and wakes that one thread. So a call wakes exactly one thread, no thread is woken
// for a call another one took, and in a steady load the same few threads stay warm while the
// surplus ones really sit idle for 10 s and end (with a shared queue and a shared condition
// variable, work would rotate over every thread and none would ever idle long enough to end).
// Calls that find every thread busy and the pool at its maximum wait in a FIFO, which a thread
// that finishes a call drains before it goes idle.
//
// Lifetime: the pool is allocated once and never destroyed (reachable from a static, so valgrind
// counts it "still reachable", not leaked): a run_blocking from a static destructor that runs
// after the exit step still finds it. What runs at exit is ExitStep below.
#include <fiberutils/run_blocking.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <fiberutils/cancelled.hpp>

#include "fiberutils_config.hpp"

namespace fiberutils {
namespace detail {
namespace {

using CallPtr = std::shared_ptr<BlockingCall>;

// How long a pool thread stays idle before it ends (issue 14).
constexpr auto kIdleTimeout = std::chrono::seconds(10);

// Runs a call that was not withdrawn and wakes its waiter. Any thread.
void execute(const CallPtr& call) noexcept {
  int expected = BlockingCall::queued;
  if (!call->state_.compare_exchange_strong(expected, BlockingCall::running,
                                            std::memory_order_acq_rel))
    return;  // withdrawn: its task was stopped before the call started
  call->invoke();
  std::lock_guard<std::mutex> lk(call->m_);
  call->state_.store(BlockingCall::done, std::memory_order_release);
  call->waiter_.wake_all();
}

class BlockingPool {
 public:
  static BlockingPool& get() {
    static BlockingPool* const pool = new BlockingPool;
    return *pool;
  }

  void set_max(std::size_t n) {
    if (n == 0)
      throw std::invalid_argument("fiberutils::set_blocking_threads: n must be >= 1");
    std::lock_guard<std::mutex> lk(m_);
    if (used_)
      throw std::logic_error(
          "fiberutils::set_blocking_threads: called after the first run_blocking; set the "
          "maximum before any call");
    max_ = n;
  }

  // Hands the call to an idle thread, a new thread or the FIFO. False once the program is
  // exiting (the caller then runs it itself).
  bool submit(CallPtr call) {
    std::vector<std::thread> retired;
    {
      std::lock_guard<std::mutex> lk(m_);
      if (stopping_)
        return false;
      used_ = true;
      if (!idle_.empty()) {
        Worker* w = idle_.back();
        idle_.pop_back();
        w->job = std::move(call);
        w->cv.notify_one();
        return true;
      }
      if (workers_.size() < max_) {
        try {
          start_worker(call);
          retired.swap(retired_);
        } catch (...) {
          if (workers_.empty())
            throw;                            // nothing would ever run a queued call
          queue_.push_back(std::move(call));  // the running threads will take it
        }
      } else {
        queue_.push_back(std::move(call));
      }
    }
    // Threads that ended idle have returned (or are returning) from their function: joining
    // them takes microseconds, outside the lock.
    for (std::thread& t : retired)
      t.join();
    return true;
  }

  // Program exit: see ExitStep.
  void stop_at_exit() {
    std::vector<std::thread> to_join;
    {
      std::unique_lock<std::mutex> lk(m_);
      stopping_ = true;
      queue_.clear();  // never started; their waiters, if any still exist, are exiting too
      for (Worker* w : idle_) w->cv.notify_one();
      // Idle threads leave now, threads inside a call once it returns.
      all_left_.wait(lk, [this] { return workers_.empty(); });
      to_join.swap(retired_);
    }
    for (std::thread& t : to_join) t.join();
  }

 private:
  struct Worker {
    std::condition_variable cv;
    CallPtr job;  // handed over while idle
    std::thread thread;
  };

  void start_worker(const CallPtr& first) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* w = workers_.back().get();
    try {
      w->thread = std::thread(&BlockingPool::run, this, w, first);
    } catch (...) {
      workers_.pop_back();
      throw;
    }
  }

  void run(Worker* w, CallPtr job) {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      if (job) {
        lk.unlock();
        execute(job);
        job.reset();  // may destroy the call (its waiter has left): outside the lock
        lk.lock();
        continue;
      }
      if (stopping_)
        break;
      if (!queue_.empty()) {
        job = std::move(queue_.front());
        queue_.pop_front();
        continue;
      }
      idle_.push_back(w);
      w->cv.wait_for(lk, kIdleTimeout, [&] { return w->job != nullptr || stopping_; });
      if (w->job) {  // the submitter took w off idle_
        job = std::move(w->job);
        continue;
      }
      idle_.erase(std::find(idle_.begin(), idle_.end(), w));
      break;  // idle for kIdleTimeout, or the program is exiting
    }
    // Threads that ended before this one are joined by it, so at most one ended thread (with its
    // stack) waits to be joined: by the next one to end, the next thread start, or the exit step.
    std::vector<std::thread> earlier;
    earlier.swap(retired_);
    leave(w);
    lk.unlock();
    for (std::thread& t : earlier)
      t.join();
  }

  // The calling pool thread forgets its record. m_ held.
  void leave(Worker* w) {
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [w](const std::unique_ptr<Worker>& p) { return p.get() == w; });
    retired_.push_back(std::move(w->thread));
    workers_.erase(it);
    if (stopping_)
      all_left_.notify_all();
  }

  std::mutex m_;
  std::size_t max_ = FIBERUTILS_BLOCKING_THREADS;
  bool used_ = false;          // the first run_blocking happened: the maximum is fixed
  bool stopping_ = false;      // the program is exiting
  std::deque<CallPtr> queue_;  // calls waiting for a thread, FIFO
  std::vector<Worker*> idle_;  // idle threads; back: most recently idle
  std::list<std::unique_ptr<Worker>> workers_;  // every live pool thread
  std::vector<std::thread> retired_;            // threads that ended idle, not joined yet
  std::condition_variable all_left_;            // for stop_at_exit
};

// Program exit. Constructed by the first run_blocking, so destroyed (std::exit's reverse order)
// after the main thread's thread-locals (whose runners finish the main thread's tasks first) and
// before every static that was constructed before that first call: a call still running may use
// those. It waits for calls still running to return (as Python's concurrent.futures does), then
// joins every pool thread. Not waiting would leave threads running through the rest of static
// destruction, and a thread that is never joined leaks its thread-local storage (valgrind reports
// it; so would a leak checker in user programs).
struct ExitStep {
  ~ExitStep() { BlockingPool::get().stop_at_exit(); }
};

BlockingPool& pool() {
  static ExitStep exit_step;
  return BlockingPool::get();
}

}  // namespace

void run_on_blocking_pool(const std::shared_ptr<BlockingCall>& call) {
  const StopCondition stop = current_stop();
  if (stop.stop_requested())
    throw cancelled{};
  if (!pool().submit(call)) {
    execute(call);  // the program is exiting: no pool any more
  }
  std::unique_lock<std::mutex> lk(call->m_);
  try {
    park_until(lk, call->waiter_, stop, std::nullopt,
               [&] { return call->state_.load(std::memory_order_acquire) == BlockingCall::done; },
               WaitKind::run_blocking);
  } catch (const cancelled&) {
    // Not started yet: withdraw it, so it never runs. Started: it finishes unobserved.
    int expected = BlockingCall::queued;
    call->state_.compare_exchange_strong(expected, BlockingCall::withdrawn,
                                         std::memory_order_acq_rel);
    throw;
  }
  lk.unlock();
  if (call->error_)
    std::rethrow_exception(call->error_);
}

}  // namespace detail

void set_blocking_threads(std::size_t n) {
  detail::BlockingPool::get().set_max(n);
}

}  // namespace fiberutils
