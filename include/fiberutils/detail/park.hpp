// SPDX-License-Identifier: Apache-2.0
//
// Internal: the park, the one way a fiberutils fiber waits.
//
// A Park is made by the fiber that is about to wait, on its own stack, for one wait. That fiber
// publishes it where its wakers will find it (a ParkQueue under the waited-for object's lock, or
// a single atomic slot), and then calls wait(). It resumes exactly once, for the first of:
// - wake(), from any thread, any fiber but the waiter, a plain thread or an Asio handler; only
//   the first call wakes it (it returns true), later ones return false;
// - the stop of the StopCondition passed to wait(): its task's stop token, requested from
//   anywhere, or the deadline of one of the fiber's deadline scopes;
// - the deadline passed to wait().
// No lost wake-up: a wake() after the Park was made and before wait() suspends makes wait()
// return at once. A wake() may come while the waiter is not suspended yet; the waiter's thread
// resumes it only after it has suspended (fiberutils requires schedulers that do not migrate
// running fibers: round_robin, or its own executors).
//
// Lifetime: a waker may only touch a Park it found published under the lock (or claimed from the
// slot) that the waiter takes again before destroying the Park, so a Park never outlives a
// waker's use of it. Everything a library wait needs on top (a predicate, a cancellation point)
// is park_until() below.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

namespace boost::fibers {
class context;
}

namespace fiberutils::detail {

using Clock = std::chrono::steady_clock;

enum class ParkStatus { woken, timed_out, stopped };

// "No deadline" for Park::wait.
inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

class DeadlineScope;
struct RunnerRecord;

// What stops a library wait of the calling fiber: its task's stop token, and the deadlines of
// the deadline scopes (fu::move_on_after and friends) it is inside. Built by current_stop(); an
// empty one (or one made from a bare token) stops on nothing else.
class StopCondition {
 public:
  StopCondition() = default;
  StopCondition(std::stop_token token) noexcept : token_(std::move(token)) {}  // NOLINT: implicit
  // `waiter`: the fiber it was made for, which waits with it (see waiter()).
  StopCondition(std::stop_token token, DeadlineScope* scope,
                boost::fibers::context* waiter) noexcept
      : token_(std::move(token)), scope_(scope), waiter_(waiter) {}

  // True once the token is stopped or a scope expired; a scope whose deadline passed expires
  // here. Never suspends.
  bool stop_requested() const noexcept { return token_.stop_requested() || (scope_ && scope_stopped()); }
  bool stop_possible() const noexcept { return scope_ || token_.stop_possible(); }
  // Whether it holds deadline scopes, and their earliest deadline (only when it does).
  bool in_scope() const noexcept { return scope_ != nullptr; }
  Clock::time_point scope_deadline() const noexcept;
  const std::stop_token& token() const noexcept { return token_; }
  // The fiber that current_stop() made it on, nullptr when unknown: park_until() hands it to its
  // Park, which then need not ask Boost for the running fiber (a call into Boost's library and
  // two thread-local lookups, a tenth of a spawn+join's instructions for the joiner's park).
  boost::fibers::context* waiter() const noexcept { return waiter_; }

 private:
  // The scope chain's part of stop_requested() (lib/deadline.cpp); only called inside a scope.
  bool scope_stopped() const noexcept;

  std::stop_token token_;
  DeadlineScope* scope_ = nullptr;
  boost::fibers::context* waiter_ = nullptr;
};

// The calling fiber's stop condition: its task's token (none outside tasks) and its scopes.
StopCondition current_stop() noexcept;

// What a park waits for, as fu::live_tasks() reports it (TaskInfo::waiting_in): every library
// wait passes its own; `other` is a wait that did not say.
enum class WaitKind : std::uint8_t { other, join, sleep, semaphore, stream, put, run_blocking, io };

class Park {
 public:
  // Binds the Park to the calling fiber and arms it: wake() works from now on. `kind` is what
  // live_tasks() shows while the calling task waits in wait(). `self`: the calling fiber, when
  // the caller knows it (nullptr: asks Boost).
  explicit Park(WaitKind kind = WaitKind::other, boost::fibers::context* self = nullptr) noexcept;
  Park(const Park&) = delete;
  Park& operator=(const Park&) = delete;
  ~Park();

  // wake() resumes the waiting fiber if no wake-up, stop or deadline did first. Never suspends,
  // never blocks the thread; any thread, any fiber but the one that made the Park (which, by
  // the time anyone can find the Park, has nothing to run but wait()).
  bool wake() noexcept;

  // wait(stop, deadline) suspends the calling fiber (the one that made the Park) until it is
  // woken, `stop` is requested (a scope's deadline included), or the deadline passes; returns
  // which came first. Not a cancellation point by itself: callers turn `stopped` into
  // fu::cancelled. A Park waits once. (The deadline is a plain time point, kNoDeadline for none:
  // g++ 12 passed a std::optional<time_point> through a byte store and an overlapping 8-byte
  // load, a store-forwarding stall on every park.)
  //
  // Inline, so that the fiber suspends in its caller's frame: a resumed fiber returns through
  // every frame it suspended in, and after a switch of stacks each of those returns misses the
  // CPU's return-address predictor (the predictor still holds the other fiber's calls), 5 ns a
  // frame here. The work before and after is in fresh calls, which predict normally.
  ParkStatus wait(const StopCondition& stop, Clock::time_point deadline = kNoDeadline) noexcept {
    const Clock::time_point until = begin_wait(stop, deadline);
    if (!woke_itself_) block(until);
    return end_wait(stop);
  }

  // Intrusive links for ParkQueue; guarded by the queue owner's lock.
  Park* next_ = nullptr;
  Park* prev_ = nullptr;
  bool queued_ = false;

 private:
  // The stop callback of wait(): unlike other wakers, it may be the waiter itself, run inline
  // while begin_wait() registers it (the stop was requested already).
  struct OnStop {
    Park* p;
    void operator()() const noexcept;
  };
  // What wait() does around the suspension: begin_wait notes the wait for live_tasks(),
  // registers the stop callback and returns when the wait ends at the latest (kNoDeadline for
  // never; nothing to suspend for once woke_itself_ is set); block suspends until woken or
  // `until`, calling into Boost only through tail calls (no frame of its own to return
  // through); end_wait disarms and says why it ended.
  Clock::time_point begin_wait(const StopCondition& stop, Clock::time_point deadline) noexcept;
  void block(const Clock::time_point& until) noexcept;
  ParkStatus end_wait(const StopCondition& stop) noexcept;
  std::intptr_t marker() const noexcept { return reinterpret_cast<std::intptr_t>(this); }

  boost::fibers::context* fiber_;
  RunnerRecord* note_ = nullptr;  // the waiting runner's record (lib/live_tasks_state.hpp)
  std::optional<std::stop_callback<OnStop>> on_stop_;
  WaitKind kind_;
  // A stop callback ran inline in begin_wait(), on the waiter itself (no other thread writes it).
  bool woke_itself_ = false;
  bool waited_ = false;       // wait() ran: it disarmed the word, the destructor need not
};

// A FIFO of parked fibers. Not synchronised: the owner's lock guards it, and wakers wake under it.
class ParkQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push_back(Park& p) noexcept {
    p.next_ = nullptr;
    p.prev_ = tail_;
    if (tail_) tail_->next_ = &p; else head_ = &p;
    tail_ = &p;
    p.queued_ = true;
  }
  void remove(Park& p) noexcept {  // no-op when p is not queued
    if (!p.queued_) return;
    if (p.prev_) p.prev_->next_ = p.next_; else head_ = p.next_;
    if (p.next_) p.next_->prev_ = p.prev_; else tail_ = p.prev_;
    p.next_ = p.prev_ = nullptr;
    p.queued_ = false;
  }
  Park* pop_front() noexcept {
    Park* p = head_;
    if (p) remove(*p);
    return p;
  }
  Park* pop_back() noexcept {
    Park* p = tail_;
    if (p) remove(*p);
    return p;
  }
  // Wakes the first waiter that can still be woken (skipping those a stop or timeout took);
  // false when none could be.
  bool wake_one() noexcept {
    while (Park* p = pop_front())
      if (p->wake()) return true;
    return false;
  }
  void wake_all() noexcept {
    while (Park* p = pop_front()) (void)p->wake();
  }

 private:
  Park* head_ = nullptr;
  Park* tail_ = nullptr;
};

// park_until(lk, q, stop, deadline, pred) waits with `lk` held on entry and on return until
// pred() holds (true) or the deadline passes (false). Throws fu::cancelled, `lk` held, when `stop`
// is requested before or during the wait: pass current_stop() for a cancellation point, or an
// empty StopCondition{} for a wait that cannot be cancelled. Wakers call q.wake_one()/wake_all()
// under the same lock after changing what pred() reads. `kind`: see Park.
template <class Pred>
bool park_until(std::unique_lock<std::mutex>& lk, ParkQueue& q, const StopCondition& stop,
                std::optional<Clock::time_point> deadline, Pred pred,
                WaitKind kind = WaitKind::other);

[[noreturn]] void throw_cancelled();

template <class Pred>
bool park_until(std::unique_lock<std::mutex>& lk, ParkQueue& q, const StopCondition& stop,
                std::optional<Clock::time_point> deadline, Pred pred, WaitKind kind) {
  for (;;) {
    if (stop.stop_requested()) throw_cancelled();
    if (pred()) return true;
    if (deadline && Clock::now() >= *deadline) return false;
    Park p(kind, stop.waiter());
    q.push_back(p);
    lk.unlock();
    (void)p.wait(stop, deadline ? *deadline : kNoDeadline);
    lk.lock();
    q.remove(p);  // still queued after a stop or a timeout
  }
}

}  // namespace fiberutils::detail
