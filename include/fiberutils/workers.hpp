// SPDX-License-Identifier: Apache-2.0
//
// fu::Workers: the calling thread and n-1 helper threads share the tasks spawned on them, so a
// program uses every core without changing how it spawns, joins or waits.
//
// The rule: **tasks move between threads only before they start.** A task that has not started
// is a queued callable without a stack, and any thread of the Workers may start it; once started
// it runs to its end on that thread. A running task never migrates, so its thread_local state,
// thread-affine handles and the per-thread stack pools stay valid across every wait.
//
// - Which tasks: those spawned on any of its threads while it exists (by the owner, by a helper,
//   by a task on either, nested spawns included), into any Group, Pool or stream, also one
//   created before the Workers. Tasks spawned on a thread outside it run on that thread, as
//   without a Workers. A task waiting for a Pool slot starts on the thread that frees the slot
//   when that thread belongs to the Workers.
// - What user code may assume: data that tasks share needs synchronisation as between threads
//   (std::mutex, std::atomic, fu::Semaphore); thread_local state and std::this_thread::get_id()
//   are stable within one task; tasks are taken in FIFO order from one shared queue, so they
//   *start* in spawn order, but with several threads a later task may start before an earlier
//   one has got far, and they *finish* in any order. Everything in the library keeps its
//   guarantees: Pool limits hold across threads, streams keep their order, cancellation and
//   this_task work as on one thread.
// - Idle helpers sleep (no spinning, no polling interval); a task queued while they sleep wakes
//   one at once.
// - Suspends: the constructor (until its helper threads have started) and the destructor.
//   Blocks the thread: the destructor, briefly, while it joins helper threads that have already
//   stopped. Fiber-local: create and destroy a Workers on the same thread (it is meant to be a
//   local variable); the object itself is not shared.
// - Destructor: suspends the calling fiber until no task spawned under it is queued or running
//   (other fibers of the thread keep running, and the owner thread keeps running its share of
//   the tasks), then stops and joins the helper threads. It cancels nothing: join or cancel your
//   groups first if you want them to end.
//
// Example:
//   {
//     fu::Workers workers(4);  // this thread and 3 helpers
//     fu::Group g;
//     for (auto& chunk : chunks) g.spawn(crunch, std::ref(chunk));
//     g.join();                // the tasks ran on any of the 4 threads
//   }
#pragma once

#include <memory>
#include <thread>
#include <vector>

namespace fiberutils {

namespace detail {
class SharedRunners;
}

class Workers {
 public:
  // Workers() uses std::thread::hardware_concurrency() threads (at least 1), the calling
  // thread included. Throws as Workers(n) does.
  Workers();
  // Workers(n): the calling thread and n-1 helper threads share tasks. Throws
  // std::invalid_argument when n is 0, std::logic_error when the calling thread already belongs
  // to a Workers (a helper's task included), std::system_error when a thread cannot be started.
  explicit Workers(unsigned n);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // size() is the number of threads, the calling one included.
  unsigned size() const noexcept { return static_cast<unsigned>(helpers_.size()) + 1; }

 private:
  std::unique_ptr<detail::SharedRunners> runners_;
  std::vector<std::thread> helpers_;
  std::thread::id owner_;
};

}  // namespace fiberutils
