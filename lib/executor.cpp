// SPDX-License-Identifier: Apache-2.0
//
// The runner machinery behind both executors (see executor.hpp): ThreadRunners, a thread's own
// runner fibers, and SharedRunners, the threads of a fu::Workers sharing one queue.
//
// A Host is the runners of one thread for one executor; it has one Lane per stack size in use.
// A lane reads a FIFO of admitted tasks (its own in ThreadRunners; the executor's shared one in
// SharedRunners) and keeps a set of runner fibers. A runner takes the next task and runs it; when
// the task returns without having suspended, the runner takes the next one on the same,
// already-resident stack, so most tasks cost no fiber creation and no fresh pages.
//
// Liveness without a custom scheduling algorithm: a runner that takes a task while more are
// queued and no other runner of its thread is on its way (`pending == 0`) first wakes an idle
// runner or starts a new one on its thread. Whatever the task then blocks on (a fiberutils
// wait, a raw Boost.Fiber mutex, channel or sleep), round_robin reaches that spare runner, which
// takes the next task. SharedRunners adds parallelism: a task queued while another thread has
// no runner on its way wakes one of that thread's idle runners (or asks the helper thread's main
// fiber to start one) through Park::wake(), which reaches a sleeping thread through Boost's
// remote ready queue. Nobody spins or polls.
//
// Idle runners and the thread's exit wait on the park (detail/park.hpp), like every other wait.
// ThreadRunners' lane state is touched only by fibers of its own thread, cooperatively, so it
// needs no lock; SharedRunners' is under its one mutex (Host::lock_), released while a task runs
// and while a runner is parked. Runners never migrate: fiberutils requires a scheduling
// algorithm that keeps fibers on their thread (round_robin, Boost.Fiber's default), and a fiber
// is only ever started on its own thread.
#include "executor.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "fast_tls.hpp"
#include "fiber_state.hpp"
#include "live_tasks_state.hpp"
#include "stack_pool.hpp"

namespace fiberutils::detail {
namespace {

// Idle runners kept parked per lane once the lane has nothing to do: a parked runner keeps its
// stack resident, ready for the next burst. While work goes on, every idle runner is kept: a
// runner's exit costs a Boost.Fiber spinlock frame on a second stack page and a fiber creation
// for the next task. The surplus ends when the lane goes idle (Host::trim_some).
constexpr std::size_t kKeptIdleRunners = 64;

// Idle runners ended, and surplus free stacks unmapped, in one step of a trim (see trim_some and
// ~ThreadRunners): few enough that the work is spread out and what became ready runs in between.
constexpr std::size_t kTrimBatch = 32;

namespace bi = boost_internals;

class Host;

// A runner waiting for work: parked in its lane's idle queue.
struct IdleRunner : Park {
  explicit IdleRunner(bi::Fiber* self) noexcept : Park(WaitKind::other, self) {}
  bool exit_requested = false;  // set by end_idle_runners before waking a surplus runner
};

struct Lane {
  Host* host;
  std::size_t stack_size;
  StackPool* pool;
  TaskQueue* queue;            // own_queue, or a SharedRunners queue
  TaskQueue own_queue;
  ParkQueue idle;              // of IdleRunner; back: most recently parked (warmest stack)
  std::size_t idle_count = 0;
  std::size_t pending = 0;  // runners started, woken or requested that have not looked yet
  std::size_t busy = 0;     // runners inside a task (running or suspended)
};

// What a runner fiber knows about itself, found through the fiber's runner slot: its record for
// fu::live_tasks() (live_tasks_state.hpp).
using Runner = RunnerRecord;

// Locks a Host's mutex when it has one (SharedRunners); a no-op for ThreadRunners.
class MaybeLock {
 public:
  explicit MaybeLock(std::mutex* m) : m_(m) { lock(); }
  ~MaybeLock() { unlock(); }
  MaybeLock(const MaybeLock&) = delete;
  MaybeLock& operator=(const MaybeLock&) = delete;
  void lock() {
    if (m_ && !held_) m_->lock();
    held_ = true;
  }
  void unlock() {
    if (m_ && held_) m_->unlock();
    held_ = false;
  }

 private:
  std::mutex* m_;
  bool held_ = false;
};

// The runners of one thread for one executor. Its members are called on that thread with
// lock_ held (when there is one), except where a comment says otherwise.
class Host {
 public:
  explicit Host(std::mutex* lock) : lock_(lock) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // The lane for stack_size, created on first use, reading `queue` (nullptr: its own).
  Lane& lane(std::size_t stack_size, TaskQueue* queue = nullptr) {
    if (last_ && last_->stack_size == stack_size) return *last_;
    if (Lane* l = find_lane(stack_size)) return *(last_ = l);
    lanes_.push_back(std::unique_ptr<Lane>(new Lane{this, stack_size, &StackPool::for_size(stack_size),
                                                    nullptr, {}, {}, 0, 0, 0}));
    Lane& l = *lanes_.back();
    l.queue = queue ? queue : &l.own_queue;
    return *(last_ = &l);
  }
  // Any thread, lock held.
  Lane* find_lane(std::size_t stack_size) const noexcept {
    for (auto& l : lanes_)
      if (l->stack_size == stack_size) return l.get();
    return nullptr;
  }

  // Makes sure a runner of this (the calling) thread will look at the lane's queue: wakes an
  // idle one or starts one. Throws std::bad_alloc when no runner could be started.
  void wake_or_start(Lane& lane) {
    if (lane.idle_count > 0) {
      wake_one(lane);
      return;
    }
    ++lane.pending;
    try {
      start_runner(lane);
    } catch (...) {
      --lane.pending;
      throw;
    }
  }

  // Starts a runner fiber on the calling thread, whose `pending` is already counted; it cannot
  // run before the caller suspends.
  void start_runner(Lane& lane) {
    ++live_;
    try {
      boost::fibers::fiber(std::allocator_arg, PooledStackAllocator(*lane.pool), &run_lane, &lane)
          .detach();
    } catch (...) {
      --live_;
      throw;
    }
  }

  // Any thread, lock held (or the host's own thread without one).
  static void wake_one(Lane& lane) noexcept {
    Park* p = lane.idle.pop_back();
    --lane.idle_count;
    ++lane.pending;
    p->wake();
  }

  // Asks up to `most` of the lane's idle runners beyond `keep` to end, the coldest first; they
  // end when they next run. Returns how many were asked.
  static std::size_t end_idle_runners(Lane& lane, std::size_t keep, std::size_t most) noexcept {
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
  static bool trim_some(Lane& lane) {
    end_idle_runners(lane, kKeptIdleRunners, kTrimBatch);
    const bool more_stacks = lane.pool->trim_excess(kTrimBatch);
    return lane.idle_count > kKeptIdleRunners || more_stacks;
  }

  // Suspends the calling fiber (one of this thread's, not a runner) until at most `n` runners
  // are left. `lk` holds lock_ on entry and on return.
  void wait_until_live(MaybeLock& lk, std::size_t n) {
    while (live_ > n) {
      Park p;
      exit_target_ = n;
      exit_waiter_ = &p;
      lk.unlock();
      (void)p.wait({});
      lk.lock();
      if (exit_waiter_ == &p) exit_waiter_ = nullptr;
    }
  }

  static void run_lane(Lane* lane);
  static void run_task(Runner& self, TaskBase* t) noexcept;

 protected:
  ~Host() = default;

  // Whether runners end instead of parking when they find nothing to do.
  virtual bool stopping() const noexcept = 0;
  // A runner took a task and more are queued (lock held).
  virtual void took_task_with_more(Lane&) noexcept {}
  // A runner's task ended (lock held).
  virtual void task_done(Lane&) noexcept {}

  std::mutex* const lock_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  Lane* last_ = nullptr;
  std::size_t live_ = 0;
  Park* exit_waiter_ = nullptr;
  std::size_t exit_target_ = 0;  // live_ at which exit_waiter_ is woken

 private:
  void runner_exited() noexcept {
    if (--live_ <= exit_target_ && exit_waiter_) std::exchange(exit_waiter_, nullptr)->wake();
  }
};

void Host::run_task(Runner& self, TaskBase* t) noexcept {
  TaskGroup* group = t->group_;
  const bool held_slot = t->holds_slot();
  self.task_started(t);
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
  self.task_ended();
  group->task_finished(held_slot);
}

void Host::run_lane(Lane* lane) {
  Runner self;
  bi::Fiber* const me = bi::active();  // asked once: a runner parks once per burst of tasks
  ThreadRecord& thread = ThreadRecord::here();
  thread.add(self);
  set_fiber_state(&self);
  Host& h = *lane->host;
  MaybeLock lk(h.lock_);
  --lane->pending;
  for (;;) {
    if (lane->queue->empty()) {
      if (lane->busy == 0 && !h.stopping()) {
        // Nothing runs in this lane: give back a burst's surplus runners and stacks, a few at
        // a time, yielding so that whatever became ready (a joiner) goes first.
        while (lane->queue->empty() && lane->busy == 0 && trim_some(*lane)) {
          lk.unlock();
          boost::this_fiber::yield();
          lk.lock();
        }
        if (!lane->queue->empty()) continue;
      }
      if (h.stopping()) break;
      IdleRunner idle(me);
      lane->idle.push_back(idle);
      ++lane->idle_count;
      lk.unlock();
      (void)idle.wait({});
      lk.lock();
      if (idle.exit_requested) break;
      --lane->pending;
      continue;
    }
    TaskBase* t = lane->queue->pop();
    if (!lane->queue->empty()) {
      if (lane->pending == 0) {
        try {
          h.wake_or_start(*lane);
        } catch (...) {
          // Out of memory for a spare runner: this runner still drains the queue, only
          // without a spare while this task is suspended.
        }
      }
      h.took_task_with_more(*lane);
    }
    ++lane->busy;
    lk.unlock();
    run_task(self, t);
    lk.lock();
    --lane->busy;
    h.task_done(*lane);
  }
  set_fiber_state(nullptr);
  thread.remove(self);
  h.runner_exited();
}

// ---- ThreadRunners ------------------------------------------------------------------------

class ThreadRunners final : public Executor, public Host {
 public:
  ThreadRunners() : Host(nullptr) {
    // Boost.Fiber's own thread-locals must be constructed before ours so that they are
    // destroyed after ours: ~ThreadRunners still suspends and schedules fibers. The thread's
    // ThreadRecord likewise, so that it outlives every runner.
    (void)bi::active();
    (void)ThreadRecord::here();
  }

  // Thread exit: runs whatever is still queued on this thread, then lets every runner end.
  // Idle runners end a batch at a time, and the stacks they free beyond what a pool keeps are
  // unmapped between batches: an ending fiber writes Boost's spinlock frame (context::terminate)
  // on a second page of its stack, so ending 10,000 parked runners at once would double their
  // resident stacks at the very end (measured: 87 MB peak against 47 MB while 10,000 slept).
  ~ThreadRunners() {
    stopping_ = true;
    MaybeLock lk(nullptr);
    for (auto& lane : lanes_)
      if (!lane->queue->empty() && lane->pending == 0) wake_or_start(*lane);
    for (;;) {
      std::size_t ended = 0;
      for (auto& lane : lanes_) ended += end_idle_runners(*lane, 0, kTrimBatch - ended);
      if (ended == 0) break;
      wait_until_live(lk, live_ - ended);
      boost::this_fiber::yield();  // the dispatcher frees ended fibers' stacks when it runs
      for (auto& lane : lanes_)
        while (lane->pool->trim_excess(kTrimBatch)) {
        }
    }
    wait_until_live(lk, 0);
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
    l.queue->push(task);
  }

 private:
  bool stopping() const noexcept override { return stopping_; }
  bool stopping_ = false;
};

}  // namespace

// ---- SharedRunners ------------------------------------------------------------------------

namespace {
class WorkerThread;
// The WorkerThread of the calling thread, while it belongs to a SharedRunners.
thread_local WorkerThread* this_worker_thread = nullptr;
}  // namespace

struct SharedRunners::State {
  std::mutex m;
  struct Queue {
    std::size_t stack_size;
    TaskQueue tasks;
  };
  std::vector<std::unique_ptr<Queue>> queues;
  std::vector<WorkerThread*> threads;  // the owner first, then helpers as they start serving
  std::size_t next_wake = 0;           // where the search for a thread to wake starts
  std::size_t in_flight = 0;           // tasks queued or running
  Park* drain_waiter = nullptr;        // drain_and_stop(), while tasks are in flight
  Park* threads_waiter = nullptr;      // wait_for_threads(), while helpers start
  bool stopping = false;
  Executor* owner_previous = nullptr;  // the owner thread's executor before join_owner()

  Queue& queue(std::size_t stack_size) {
    for (auto& q : queues)
      if (q->stack_size == stack_size) return *q;
    queues.push_back(std::unique_ptr<Queue>(new Queue{stack_size, {}}));
    return *queues.back();
  }

  void wake_another(std::size_t stack_size, TaskQueue& q, WorkerThread* except) noexcept;
};

namespace {

// One thread of a SharedRunners: its runners, and (for a helper) the main fiber that starts
// runners when another thread asks.
class WorkerThread final : public Host {
 public:
  WorkerThread(SharedRunners::State& s, bool helper) : Host(&s.m), s_(s), helper_(helper) {}

  bool helper() const noexcept { return helper_; }

  // Any thread, lock held: makes sure this thread will look at `q` soon, if that is possible
  // without starting a fiber from another thread. Returns false when it has no runner to wake
  // and no main fiber waiting (every runner is inside a task: it will look when one returns).
  bool nudge(std::size_t stack_size, TaskQueue& q) noexcept {
    Lane* l = find_lane(stack_size);
    if (l && l->pending > 0) return false;  // one is on its way already
    if (l && l->idle_count > 0) {
      wake_one(*l);
      return true;
    }
    if (!helper_ || !main_park_) return false;
    if (!l) {
      try {
        l = &lane(stack_size, &q);
      } catch (...) {
        return false;  // out of memory: the thread that queued the task runs it
      }
    }
    try {
      start_requests_.push_back(l);
    } catch (...) {
      return false;
    }
    ++l->pending;
    std::exchange(main_park_, nullptr)->wake();
    return true;
  }

  // The helper's main fiber: starts the runners other threads asked for, until stopping.
  void serve(MaybeLock& lk) {
    for (;;) {
      while (!start_requests_.empty()) {
        Lane* l = start_requests_.back();
        start_requests_.pop_back();
        try {
          start_runner(*l);
        } catch (...) {
          --l->pending;  // out of memory: the other threads run the task
        }
      }
      if (s_.stopping) break;
      Park p;
      main_park_ = &p;
      lk.unlock();
      (void)p.wait({});
      lk.lock();
      if (main_park_ == &p) main_park_ = nullptr;
    }
    end_runners(lk);
  }

  // Stopping, on this thread: every idle runner ends, then waits for the rest (none is inside a
  // task any more: the executor was drained).
  void end_runners(MaybeLock& lk) {
    for (auto& l : lanes_) end_idle_runners(*l, 0, l->idle_count);
    wait_until_live(lk, 0);
  }

  // Any thread, lock held, once stopping is set.
  void wake_for_stop() noexcept {
    for (auto& l : lanes_) end_idle_runners(*l, 0, l->idle_count);
    if (main_park_) std::exchange(main_park_, nullptr)->wake();
  }

 private:
  bool stopping() const noexcept override { return s_.stopping; }

  void took_task_with_more(Lane& l) noexcept override { s_.wake_another(l.stack_size, *l.queue, this); }

  void task_done(Lane&) noexcept override {
    if (--s_.in_flight == 0 && s_.drain_waiter) std::exchange(s_.drain_waiter, nullptr)->wake();
  }

  SharedRunners::State& s_;
  const bool helper_;
  Park* main_park_ = nullptr;        // the helper's main fiber, while it waits for requests
  std::vector<Lane*> start_requests_;  // lanes that need a runner started on this thread
};

}  // namespace

// Lock held. Wakes at most one other thread per call: each queued task wakes at most one, and a
// runner that takes a task while more are queued wakes the next, so a burst spreads over the
// threads while a trickle of tasks does not wake them all for nothing.
void SharedRunners::State::wake_another(std::size_t stack_size, TaskQueue& q,
                                        WorkerThread* except) noexcept {
  const std::size_t n = threads.size();
  for (std::size_t i = 0; i < n; ++i) {
    WorkerThread* t = threads[(next_wake + i) % n];
    if (t == except) continue;
    if (t->nudge(stack_size, q)) {
      next_wake = (next_wake + i + 1) % n;
      return;
    }
  }
}

SharedRunners::SharedRunners() : s_(new State) {}

SharedRunners::~SharedRunners() {
  for (WorkerThread* t : s_->threads) delete t;
}

bool SharedRunners::thread_belongs_to_one() noexcept { return this_worker_thread != nullptr; }

void SharedRunners::join_owner() {
  (void)bi::active();  // Boost's thread-locals before ours (see ThreadRunners)
  auto* t = new WorkerThread(*s_, false);
  std::lock_guard<std::mutex> lk(s_->m);
  try {
    s_->threads.push_back(t);
  } catch (...) {
    delete t;
    throw;
  }
  this_worker_thread = t;
  s_->owner_previous = install_executor(this);
}

void SharedRunners::serve() {
  (void)bi::active();
  std::unique_ptr<WorkerThread> owned(new WorkerThread(*s_, true));
  WorkerThread* t = owned.get();
  MaybeLock lk(&s_->m);
  if (s_->stopping) return;
  s_->threads.push_back(t);
  owned.release();  // deleted by ~SharedRunners, after every thread stopped
  if (s_->threads_waiter) std::exchange(s_->threads_waiter, nullptr)->wake();
  this_worker_thread = t;
  (void)install_executor(this);
  // Tasks queued before this thread joined: start a runner for them here.
  for (auto& q : s_->queues)
    if (!q->tasks.empty()) {
      Lane& l = t->lane(q->stack_size, &q->tasks);
      if (l.pending == 0) {
        try {
          t->wake_or_start(l);
        } catch (...) {
        }
      }
    }
  t->serve(lk);
  (void)install_executor(nullptr);
  this_worker_thread = nullptr;
}

void SharedRunners::wait_for_threads(std::size_t n) noexcept {
  MaybeLock lk(&s_->m);
  while (s_->threads.size() < n) {
    Park p;
    s_->threads_waiter = &p;
    lk.unlock();
    (void)p.wait({});
    lk.lock();
    if (s_->threads_waiter == &p) s_->threads_waiter = nullptr;
  }
}

void SharedRunners::enqueue(TaskBase* task, std::size_t stack_size) {
  WorkerThread* me = this_worker_thread;
  std::lock_guard<std::mutex> guard(s_->m);
  State::Queue& q = s_->queue(stack_size);
  Lane& l = me->lane(stack_size, &q.tasks);
  // A runner of this thread first, as in ThreadRunners: if that throws, nothing was queued, and
  // the task never depends on another thread to make progress.
  if (l.pending == 0) me->wake_or_start(l);
  q.tasks.push(task);
  ++s_->in_flight;
  s_->wake_another(stack_size, q.tasks, me);
}

void SharedRunners::drain_and_stop() noexcept {
  MaybeLock lk(&s_->m);
  while (s_->in_flight > 0) {
    Park p;
    s_->drain_waiter = &p;
    lk.unlock();
    (void)p.wait({});
    lk.lock();
    if (s_->drain_waiter == &p) s_->drain_waiter = nullptr;
  }
  lk.unlock();
  stop_now();
}

void SharedRunners::stop_now() noexcept {
  MaybeLock lk(&s_->m);
  s_->stopping = true;
  // From here on, tasks admitted on this thread go where they went before the Workers.
  (void)install_executor(s_->owner_previous);
  WorkerThread* me = std::exchange(this_worker_thread, nullptr);
  for (WorkerThread* t : s_->threads) t->wake_for_stop();
  if (me) me->end_runners(lk);
}

// ---- Choosing the executor ----------------------------------------------------------------

namespace {
FIBERUTILS_FAST_TLS thread_local Executor* installed_executor = nullptr;
// ThreadRunners::here() once it was made: its own access goes through a guard and a TLS wrapper.
FIBERUTILS_FAST_TLS thread_local Executor* thread_runners = nullptr;
}  // namespace

Executor& current_executor() {
  if (Executor* e = installed_executor) return *e;
  if (Executor* e = thread_runners) return *e;
  return *(thread_runners = &ThreadRunners::here());
}

Executor* install_executor(Executor* e) noexcept { return std::exchange(installed_executor, e); }

TaskBase* current_task() noexcept {
  FiberState* s = fiber_state();
  return s ? s->current : nullptr;
}

}  // namespace fiberutils::detail
