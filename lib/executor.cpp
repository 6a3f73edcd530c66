// SPDX-License-Identifier: Apache-2.0
//
// ThreadRunners: the executor of a thread's own runner fibers (see executor.hpp).
//
// Each thread has one (thread_local) with one Lane per stack size in use. A lane keeps a FIFO of
// admitted tasks and a set of runner fibers. A runner takes the next task and runs it; when the
// task returns without having suspended, the runner takes the next one on the same,
// already-resident stack, so most tasks cost no fiber creation and no fresh pages.
//
// Liveness without a custom scheduling algorithm: a runner that takes a task while more are
// queued and no other runner is on its way (`pending == 0`) first wakes an idle runner or starts
// a new one. Whatever the task then blocks on (a fiberutils wait, a raw Boost.Fiber mutex,
// channel or sleep), round_robin reaches that spare runner, which takes the next task.
//
// Idle runners and the thread's exit wait on the park (detail/park.hpp), like every other wait.
// All lane state is touched only by fibers of its own thread, cooperatively, so it needs no lock.
// Runners never migrate: fiberutils requires a scheduling algorithm that keeps fibers on their
// thread (round_robin, Boost.Fiber's default).
#include "executor.hpp"

#include <cstdio>
#include <memory>
#include <new>
#include <vector>

#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "stack_pool.hpp"

namespace fiberutils::detail {
namespace {

// Idle runners kept parked per lane once the lane has nothing to do: a parked runner keeps its
// stack resident, ready for the next burst. While work goes on, every idle runner is kept: a
// runner's exit costs a Boost.Fiber spinlock frame on a second stack page and a fiber creation
// for the next task. The surplus ends when the lane goes idle (ThreadRunners::trim_some).
constexpr std::size_t kKeptIdleRunners = 64;

// Idle runners ended, and surplus free stacks unmapped, in one step of a trim (see trim_some and
// ~ThreadRunners): few enough that the work is spread out and what became ready runs in between.
constexpr std::size_t kTrimBatch = 32;

namespace bi = boost_internals;

class ThreadRunners;

// A runner waiting for work: parked in its lane's idle queue.
struct IdleRunner : Park {
  bool exit_requested = false;  // set by end_idle_runners before waking a surplus runner
};

struct Lane {
  ThreadRunners* exec;
  std::size_t stack_size;
  StackPool* pool;
  TaskQueue queue;
  ParkQueue idle;              // of IdleRunner; back: most recently parked (warmest stack)
  std::size_t idle_count = 0;
  std::size_t pending = 0;  // runners started or woken that have not looked at the queue yet
  std::size_t busy = 0;     // runners inside a task (running or suspended)
};

// What a runner fiber knows about itself; found through the fiber's runner slot.
struct Runner {
  TaskBase* current = nullptr;
};

class ThreadRunners final : public Executor {
 public:
  ThreadRunners() {
    // Boost.Fiber's own thread-locals must be constructed before ours so that they are
    // destroyed after ours: ~ThreadRunners still suspends and schedules fibers.
    (void)bi::active();
  }

  // Thread exit: runs whatever is still queued on this thread, then lets every runner end.
  // Idle runners end a batch at a time, and the stacks they free beyond what a pool keeps are
  // unmapped between batches: an ending fiber writes Boost's spinlock frame (context::terminate)
  // on a second page of its stack, so ending 10,000 parked runners at once would double their
  // resident stacks at the very end (measured: 87 MB peak against 47 MB while 10,000 slept).
  ~ThreadRunners() {
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

  static ThreadRunners& here() {
    thread_local ThreadRunners runners;
    return runners;
  }

  void enqueue(TaskBase* task, std::size_t stack_size) override {
    Lane& l = lane(stack_size);
    // Start the runner first: if that throws, nothing was queued. It cannot run before we
    // suspend, so it will find the task.
    if (l.pending == 0) wake_or_start(l);
    l.queue.push(task);
  }

  Lane& lane(std::size_t stack_size) {
    if (last_ && last_->stack_size == stack_size) return *last_;
    for (auto& l : lanes_)
      if (l->stack_size == stack_size) return *(last_ = l.get());
    lanes_.push_back(std::unique_ptr<Lane>(
        new Lane{this, stack_size, &StackPool::for_size(stack_size), {}, {}, 0, 0, 0}));
    return *(last_ = lanes_.back().get());
  }

  void wake_or_start(Lane& lane) {
    if (lane.idle_count > 0) {
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
    Park* p = lane.idle.pop_back();
    --lane.idle_count;
    ++lane.pending;
    p->wake();
  }

  // Asks up to `most` of the lane's idle runners beyond `keep` to end, the coldest first; they
  // end when they next run. Returns how many were asked.
  static std::size_t end_idle_runners(Lane& lane, std::size_t keep, std::size_t most) {
    std::size_t n = 0;
    for (; n < most && lane.idle_count > keep; ++n) {
      auto* r = static_cast<IdleRunner*>(lane.idle.pop_front());
      --lane.idle_count;
      r->exit_requested = true;
      r->wake();
    }
    return n;
  }

  // Ends a few surplus idle runners and unmaps a few surplus free stacks; true while there is
  // more to do.
  bool trim_some(Lane& lane) {
    end_idle_runners(lane, kKeptIdleRunners, kTrimBatch);
    const bool more_stacks = lane.pool->trim_excess(kTrimBatch);
    return lane.idle_count > kKeptIdleRunners || more_stacks;
  }

  static void run_lane(Lane* lane);
  static void run_task(Runner& self, TaskBase* t) noexcept;

  // Suspends the calling fiber (the thread's main fiber, in ~ThreadRunners) until at most `n`
  // runners are left.
  void wait_until_live(std::size_t n) {
    while (live_ > n) {
      Park p;
      exit_target_ = n;
      exit_waiter_ = &p;
      (void)p.wait({}, std::nullopt);
    }
  }

  void runner_exited() {
    if (--live_ <= exit_target_ && exit_waiter_) std::exchange(exit_waiter_, nullptr)->wake();
  }

  std::vector<std::unique_ptr<Lane>> lanes_;
  Lane* last_ = nullptr;
  std::size_t live_ = 0;
  bool stopping_ = false;
  Park* exit_waiter_ = nullptr;
  std::size_t exit_target_ = 0;  // live_ at which exit_waiter_ is woken
};

void ThreadRunners::run_task(Runner& self, TaskBase* t) noexcept {
  TaskGroup* group = t->group_;
  const bool held_slot = t->holds_slot();
  self.current = t;
  try {
    if (group->runs_body()) t->run();
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

void ThreadRunners::run_lane(Lane* lane) {
  Runner self;
  bi::set_runner_slot(&self);
  ThreadRunners& ex = *lane->exec;
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
      IdleRunner idle;
      lane->idle.push_back(idle);
      ++lane->idle_count;
      (void)idle.wait({}, std::nullopt);
      if (idle.exit_requested) break;
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
  bi::set_runner_slot(nullptr);
  ex.runner_exited();
}

}  // namespace

namespace {
thread_local Executor* installed_executor = nullptr;
}  // namespace

Executor& current_executor() {
  return installed_executor ? *installed_executor : ThreadRunners::here();
}

Executor* install_executor(Executor* e) noexcept { return std::exchange(installed_executor, e); }

TaskBase* current_task() noexcept {
  auto* r = static_cast<Runner*>(bi::runner_slot());
  return r ? r->current : nullptr;
}


}  // namespace fiberutils::detail
