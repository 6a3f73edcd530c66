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
#include <cstdio>
#include <memory>
#include <new>
#include <vector>

#include <boost/fiber/context.hpp>
#include <boost/fiber/fiber.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "stack_pool.hpp"

namespace fiberutils::detail {
namespace {

// Idle runners kept parked per lane: a parked runner keeps its stack resident, ready for the
// next burst; the rest exit and return their stacks to the pool.
constexpr std::size_t kMaxIdleRunners = 16;

class Executor;

struct Lane {
  Executor* exec;
  std::size_t stack_size;
  StackPool* pool;
  TaskQueue queue;
  std::vector<boost::fibers::context*> idle;
  std::size_t pending = 0;  // runners started or woken that have not looked at the queue yet
};

// What a runner fiber knows about itself; found through the fiber's fss slot.
struct Runner {
  TaskBase* current = nullptr;
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
  ~Executor() {
    stopping_ = true;
    for (auto& lane : lanes_) {
      while (!lane->idle.empty()) wake_one(*lane);
      if (!lane->queue.empty() && lane->pending == 0) wake_or_start(*lane);
    }
    while (live_ > 0) {
      exit_waiter_ = boost::fibers::context::active();
      exit_waiter_->suspend();
    }
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
    boost::fibers::context* ctx = lane.idle.back();
    lane.idle.pop_back();
    ++lane.pending;
    boost::fibers::context::active()->schedule(ctx);
  }

  static void run_lane(Lane* lane);
  static void run_task(Runner& self, TaskBase* t) noexcept;

  void runner_exited() {
    if (--live_ == 0 && exit_waiter_) {
      boost::fibers::context* w = std::exchange(exit_waiter_, nullptr);
      boost::fibers::context::active()->schedule(w);
    }
  }

  std::vector<std::unique_ptr<Lane>> lanes_;
  Lane* last_ = nullptr;
  std::size_t live_ = 0;
  bool stopping_ = false;
  boost::fibers::context* exit_waiter_ = nullptr;
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
      if (ex.stopping_ || lane->idle.size() >= kMaxIdleRunners) break;
      lane->idle.push_back(ctx);
      ctx->suspend();
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
    run_task(self, t);
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
