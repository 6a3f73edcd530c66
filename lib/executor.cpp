// SPDX-License-Identifier: Apache-2.0
//
// Runners: the fibers that run tasks.
//
// Each thread has an Executor (thread_local) with one Lane per stack size in use. A lane keeps a
// FIFO of admitted tasks and a set of runner fibers. A runner takes the next task and runs it;
// when the task returns without having suspended, the runner takes the next one on the same,
// already-resident stack, so most tasks cost no fiber creation and no fresh pages.
//
// Liveness without a custom scheduling algorithm: a runner that takes a task while more are
// queued and no other runner is on its way (`pending == 0`) first wakes an idle runner or starts
// a new one. Whatever the task then blocks on (a fiberutils wait, a raw Boost.Fiber mutex,
// channel or sleep), round_robin reaches that spare runner, which takes the next task.
//
// All lane state is touched only by fibers of its own thread, cooperatively, so it needs no lock.
// Runners never migrate: fiberutils requires a scheduling algorithm that keeps fibers on their
// thread (round_robin, Boost.Fiber's default).
#include <algorithm>
#include <deque>
#include <cstdio>
#include <memory>
#include <new>
#include <vector>

#include <boost/fiber/context.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "stack_pool.hpp"

namespace fiberutils::detail {
namespace {

// Idle runners kept parked per lane once the lane has nothing to do: a parked runner keeps its
// stack resident, ready for the next burst. While work goes on, every idle runner is kept: a
// runner's exit costs a Boost.Fiber spinlock frame on a second stack page and a fiber creation
// for the next task. The surplus ends when the lane goes idle (Executor::trim_some).
constexpr std::size_t kKeptIdleRunners = 64;

// Idle runners ended, and surplus free stacks unmapped, in one step of a trim (see trim_some and
// ~Executor): few enough that the work is spread out and what became ready runs in between.
constexpr std::size_t kTrimBatch = 32;

class Executor;

struct Runner;

struct IdleRunner {
  boost::fibers::context* ctx;
  Runner* runner;
};

struct Lane {
  Executor* exec;
  std::size_t stack_size;
  StackPool* pool;
  TaskQueue queue;
  std::deque<IdleRunner> idle;  // back: most recently parked (warmest stack)
  std::size_t pending = 0;  // runners started or woken that have not looked at the queue yet
  std::size_t busy = 0;     // runners inside a task (running or suspended)
};

// What a runner fiber knows about itself; found through the fiber's fss slot.
struct Runner {
  TaskBase* current = nullptr;
  bool exit_requested = false;  // set by trim_some before waking a surplus idle runner
};

// Key of the runner's fss slot; the address is the key.
const char kRunnerKey = 0;

// Boost.Fiber needs a cleanup function for an fss slot; the Runner lives on the runner's own
// stack, so there is nothing to clean up (the slot is cleared before the runner returns).
struct NoCleanup final : boost::fibers::detail::fss_cleanup_function {
  void operator()(void*) override {}
};

const boost::fibers::detail::fss_cleanup_function::ptr_t& no_cleanup() {
  static const boost::fibers::detail::fss_cleanup_function::ptr_t fn{new NoCleanup};
  return fn;
}

class Executor {
 public:
  Executor() {
    // Boost.Fiber's own thread-locals must be constructed before ours so that they are
    // destroyed after ours: ~Executor still suspends and schedules fibers.
    (void)boost::fibers::context::active();
  }

  // Thread exit: runs whatever is still queued on this thread, then lets every runner end.
  // Idle runners end a batch at a time, and the stacks they free beyond what a pool keeps are
  // unmapped between batches: an ending fiber writes Boost's spinlock frame (context::terminate)
  // on a second page of its stack, so ending 10,000 parked runners at once would double their
  // resident stacks at the very end (measured: 87 MB peak against 47 MB while 10,000 slept).
  ~Executor() {
    stopping_ = true;
    for (auto& lane : lanes_)
      if (!lane->queue.empty() && lane->pending == 0) wake_or_start(*lane);
    for (;;) {
      std::size_t ended = 0;
      for (auto& lane : lanes_) ended += end_idle_runners(*lane, 0, kTrimBatch - ended);
      if (ended == 0) break;
      wait_until_live(live_ - ended);
      boost::this_fiber::yield();  // the dispatcher frees ended fibers' stacks when it runs
      for (auto& lane : lanes_)
        while (lane->pool->trim_excess(kTrimBatch)) {
        }
    }
    wait_until_live(0);
  }

  static Executor& here() {
    thread_local Executor executor;
    return executor;
  }

  Lane& lane(std::size_t stack_size) {
    if (last_ && last_->stack_size == stack_size) return *last_;
    for (auto& l : lanes_)
      if (l->stack_size == stack_size) return *(last_ = l.get());
    lanes_.push_back(std::unique_ptr<Lane>(
        new Lane{this, stack_size, &StackPool::for_size(stack_size), {}, {}, 0}));
    return *(last_ = lanes_.back().get());
  }

  void wake_or_start(Lane& lane) {
    if (!lane.idle.empty()) {
      wake_one(lane);
      return;
    }
    ++lane.pending;
    ++live_;
    try {
      boost::fibers::fiber(std::allocator_arg, PooledStackAllocator(*lane.pool), &run_lane, &lane)
          .detach();
    } catch (...) {
      --lane.pending;
      --live_;
      throw;
    }
  }

 private:
  void wake_one(Lane& lane) {
    boost::fibers::context* ctx = lane.idle.back().ctx;
    lane.idle.pop_back();
    ++lane.pending;
    boost::fibers::context::active()->schedule(ctx);
  }

  // Asks up to `most` of the lane's idle runners beyond `keep` to end, the coldest first; they
  // end when they next run. Returns how many were asked.
  static std::size_t end_idle_runners(Lane& lane, std::size_t keep, std::size_t most) {
    std::size_t n = 0;
    for (; n < most && lane.idle.size() > keep; ++n) {
      IdleRunner r = lane.idle.front();
      lane.idle.pop_front();
      r.runner->exit_requested = true;
      boost::fibers::context::active()->schedule(r.ctx);
    }
    return n;
  }

  // Ends a few surplus idle runners and unmaps a few surplus free stacks; true while there is
  // more to do.
  bool trim_some(Lane& lane) {
    end_idle_runners(lane, kKeptIdleRunners, kTrimBatch);
    const bool more_stacks = lane.pool->trim_excess(kTrimBatch);
    return lane.idle.size() > kKeptIdleRunners || more_stacks;
  }

  static void run_lane(Lane* lane);
  static void run_task(Runner& self, TaskBase* t) noexcept;

  // Suspends the calling fiber (the thread's main fiber, in ~Executor) until at most `n`
  // runners are left.
  void wait_until_live(std::size_t n) {
    while (live_ > n) {
      exit_target_ = n;
      exit_waiter_ = boost::fibers::context::active();
      exit_waiter_->suspend();
    }
  }

  void runner_exited() {
    if (--live_ <= exit_target_ && exit_waiter_) {
      boost::fibers::context* w = std::exchange(exit_waiter_, nullptr);
      boost::fibers::context::active()->schedule(w);
    }
  }

  std::vector<std::unique_ptr<Lane>> lanes_;
  Lane* last_ = nullptr;
  std::size_t live_ = 0;
  bool stopping_ = false;
  boost::fibers::context* exit_waiter_ = nullptr;
  std::size_t exit_target_ = 0;  // live_ at which exit_waiter_ is woken
};

void Executor::run_task(Runner& self, TaskBase* t) noexcept {
  TaskGroup* group = t->group_;
  const bool held_slot = t->holds_slot();
  self.current = t;
  try {
    t->run();
  } catch (const cancelled&) {
  } catch (...) {
    group->record_error(std::current_exception());
  }
  // Destroy the callable here, before the group hears that the task finished: captured
  // objects must not outlive a group that is about to be destroyed.
  try {
    delete t;
  } catch (const cancelled&) {
  } catch (...) {
    group->record_error(std::current_exception());
  }
  self.current = nullptr;
  group->task_finished(held_slot);
}

void Executor::run_lane(Lane* lane) {
  Runner self;
  boost::fibers::context* ctx = boost::fibers::context::active();
  ctx->set_fss_data(&kRunnerKey, no_cleanup(), &self, false);
  Executor& ex = *lane->exec;
  --lane->pending;
  for (;;) {
    if (lane->queue.empty()) {
      if (lane->busy == 0 && !ex.stopping_) {
        // Nothing runs in this lane: give back a burst's surplus runners and stacks, a few at
        // a time, yielding so that whatever became ready (a joiner) goes first.
        while (lane->queue.empty() && lane->busy == 0 && ex.trim_some(*lane))
          boost::this_fiber::yield();
        if (!lane->queue.empty()) continue;
      }
      if (ex.stopping_) break;
      lane->idle.push_back(IdleRunner{ctx, &self});
      ctx->suspend();
      if (self.exit_requested) break;
      --lane->pending;
      continue;
    }
    TaskBase* t = lane->queue.pop();
    if (!lane->queue.empty() && lane->pending == 0) {
      try {
        ex.wake_or_start(*lane);
      } catch (...) {
        // Out of memory for a spare runner: this runner still drains the queue, only
        // without a spare while this task is suspended.
      }
    }
    ++lane->busy;
    run_task(self, t);
    --lane->busy;
  }
  ctx->set_fss_data(&kRunnerKey, no_cleanup(), nullptr, false);
  ex.runner_exited();
}

}  // namespace

void enqueue_on_this_thread(TaskBase* task, std::size_t stack_size) {
  Executor& ex = Executor::here();
  Lane& lane = ex.lane(stack_size);
  // Start the runner first: if that throws, nothing was queued. It cannot run before we
  // suspend, so it will find the task.
  if (lane.pending == 0) ex.wake_or_start(lane);
  lane.queue.push(task);
}

TaskBase* current_task() noexcept {
  auto* r = static_cast<Runner*>(boost::fibers::context::active()->get_fss_data(&kRunnerKey));
  return r ? r->current : nullptr;
}


}  // namespace fiberutils::detail
