// SPDX-License-Identifier: Apache-2.0
//
// Internal: what Yielder and OrderedYielder are made of.
//
// StreamCore<T> is a stream's buffer and its one consumer: a boost::fibers::buffered_channel
// drained lazily by an input iterator. BasicStream<Self, T, kInSpawnOrder> adds the tasks (a
// TaskGroup, the same machinery as Group and Pool, held as its last member), spawn/put/cancel,
// and for OrderedYielder the places in spawn order; Yielder and OrderedYielder are BasicStream
// with their names.
//
// The path of a value: a task's result or a put() goes into the channel (lock-free but for the
// channel's own spinlock), or into `overflow_` behind it when the channel is full, so producers
// never block; the consumer pops from the channel, or under the group's mutex refills it from
// overflow_, and parks (detail/park.hpp) when nothing is there. OrderedYielder first holds a
// value in its place until every earlier place has settled (under the mutex).
//
// Backpressure is applied by not *starting* work: a queued task is admitted only while fewer
// than kStreamCapacity values wait to be consumed, that is while nothing waits in overflow_
// behind a full channel (and a slot is free when the stream has a limit). A queued task holds no stack, so a slow consumer bounds memory. Sleeping tasks hold no
// value, so they do not cap concurrency.
//
// Synchronisation: producers push without the mutex; the mutex (the TaskGroup's) guards
// overflow_, the consumer's park and the decision that the stream has ended. Two flags tell the
// lock-free sides when to take it: `attention_` (values wait in overflow_, or tasks wait for
// room: the consumer's next pop takes the lock) and `consumer_parked_` (a producer's push takes
// the lock to wake the consumer; set before the consumer's last look at the channel, and the
// channel's spinlock orders that look against every push, so no wake-up is lost).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <boost/fiber/buffered_channel.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>
#include <fiberutils/detail/task_group.hpp>
#include <fiberutils/stack_size.hpp>
#include <fiberutils/this_task.hpp>

namespace fiberutils::detail {

// Values that may wait for the consumer before the stream stops starting tasks. A power of two,
// as buffered_channel requires.
inline constexpr std::size_t kStreamCapacity = 1024;

template <class T>
inline constexpr bool is_optional_v = false;
template <class U>
inline constexpr bool is_optional_v<std::optional<U>> = true;

// What a task returning R yields into a stream of T: R itself, or an engaged optional, or nothing.
template <class T, class R>
inline constexpr bool yields_into_v = std::is_void_v<R> || std::is_convertible_v<R, T>;
template <class T, class U>
inline constexpr bool yields_into_v<T, std::optional<U>> = std::is_convertible_v<U, T>;

// Converts what a task returned into the optional value it yields.
template <class T, class R>
std::optional<T> yielded_value(R&& r) {
  if constexpr (is_optional_v<std::remove_cvref_t<R>>) {
    if (!r) return std::nullopt;
    return std::optional<T>(T(std::move(*r)));
  } else {
    return std::optional<T>(T(std::forward<R>(r)));
  }
}

[[noreturn]] void throw_second_consumer();

template <class T>
class StreamIterator;

template <class T>
class StreamCore : private StreamGate {
 public:
  StreamIterator<T> begin() { return StreamIterator<T>(this); }
  StreamIterator<T> end() { return StreamIterator<T>(); }

 protected:
  // `tasks` is the owner's TaskGroup, constructed after this and destroyed before it.
  explicit StreamCore(TaskGroup& tasks) : tasks_(tasks) {}
  StreamGate* gate() noexcept { return this; }

  // Hands a value to the consumer. Never suspends; any thread; mutex not held.
  void push(T&& v) {
    if (cancelled_.load(std::memory_order_acquire)) return;  // nobody will read it
    if (!attention_.load(std::memory_order_acquire)) {
      std::optional<T> item(std::move(v));
      if (channel_.try_push(std::move(item)) == boost::fibers::channel_op_status::success) {
        if (consumer_parked_.load(std::memory_order_seq_cst)) {
          std::lock_guard<std::mutex> lk(tasks_.mutex());
          wake_consumer_locked();
        }
        return;
      }
      v = std::move(*item);  // try_push leaves the value where it was when the channel is full
    }
    std::lock_guard<std::mutex> lk(tasks_.mutex());
    push_locked(std::move(v));
  }

  // The same with the mutex held: behind any values in overflow_ (OrderedYielder's releases).
  void push_locked(T&& v) {
    if (cancelled_.load(std::memory_order_relaxed)) return;
    if (overflow_.empty()) {
      std::optional<T> item(std::move(v));
      if (channel_.try_push(std::move(item)) == boost::fibers::channel_op_status::success) {
        wake_consumer_locked();
        return;
      }
      v = std::move(*item);
    }
    overflow_.push_back(std::move(v));
    attention_.store(true, std::memory_order_release);
  }

 private:
  friend class StreamIterator<T>;

  // StreamGate, called by the TaskGroup with its mutex held.
  bool has_room_locked() noexcept final {
    if (cancelled_.load(std::memory_order_relaxed)) return true;  // let held-back tasks end
    // A value waits in overflow_ only once the channel was full: kStreamCapacity values wait.
    if (overflow_.empty()) return true;
    attention_.store(true, std::memory_order_release);  // the consumer admits after a pop
    return false;
  }
  void on_cancel_locked() noexcept final {
    cancelled_.store(true, std::memory_order_release);
    wake_consumer_locked();
  }
  void on_idle_locked() noexcept final { wake_consumer_locked(); }

  void wake_consumer_locked() noexcept {
    if (!consumer_park_) return;
    consumer_parked_.store(false, std::memory_order_relaxed);
    std::exchange(consumer_park_, nullptr)->wake();
  }

  // The consumer side: fills current_ with the next value, or sets ended_. Suspends while
  // nothing is ready; a cancellation point when the consumer is a task.
  void fetch() {
    if (current_ || ended_) return;
    // Only another fiber can call this while the consumer is parked.
    if (consumer_parked_.load(std::memory_order_relaxed)) throw_second_consumer();
    if (this_task::stop_requested()) throw cancelled{};
    std::optional<T> item;
    while (!cancelled_.load(std::memory_order_acquire) &&
           channel_.try_pop(item) == boost::fibers::channel_op_status::success) {
      if (taken(std::move(item), nullptr)) return;
    }
    slow_fetch(current_stop());
  }

  // A value left the channel: let the lock-free producers' backlog in when asked, and
  // keep it unless operator++ skipped it. `lk`: the mutex, when held.
  bool taken(std::optional<T>&& item, std::unique_lock<std::mutex>* lk) {
    if (attention_.load(std::memory_order_acquire)) {
      if (lk) {
        after_pop_locked();
      } else {
        std::lock_guard<std::mutex> g(tasks_.mutex());
        after_pop_locked();
      }
    }
    if (skip_ > 0) {
      --skip_;
      return false;
    }
    current_ = std::move(item);
    return true;
  }

  void slow_fetch(const StopCondition& stop) {
    std::unique_lock<std::mutex> lk(tasks_.mutex());
    std::optional<T> item;
    for (;;) {
      if (stop.stop_requested()) throw cancelled{};
      if (cancelled_.load(std::memory_order_relaxed)) break;
      if (channel_.try_pop(item) == boost::fibers::channel_op_status::success) {
        if (taken(std::move(item), &lk)) return;
        continue;
      }
      if (!overflow_.empty()) {
        refill_locked();
        continue;
      }
      if (tasks_.count_locked() == 0) break;
      tasks_.admit_pending_locked();  // everything was consumed: there is room
      if (consumer_park_) throw_second_consumer();
      Park p(WaitKind::stream, stop.waiter());
      consumer_park_ = &p;
      consumer_parked_.store(true, std::memory_order_seq_cst);
      // The last look, after announcing the park: a push that this misses sees the flag.
      if (channel_.try_pop(item) == boost::fibers::channel_op_status::success) {
        // Nobody woke the park: wakers wake under the mutex, which we hold.
        consumer_park_ = nullptr;
        consumer_parked_.store(false, std::memory_order_relaxed);
        if (taken(std::move(item), &lk)) return;
        continue;
      }
      lk.unlock();
      (void)p.wait(stop);
      lk.lock();
      if (consumer_park_ == &p) {  // a stop woke us, not a producer
        consumer_park_ = nullptr;
        consumer_parked_.store(false, std::memory_order_relaxed);
      }
    }
    ended_ = true;
    // A cancel() ends the loop quietly; a fail-fast stop ends it with the error that caused it.
    std::exception_ptr e = cancelled_.load(std::memory_order_relaxed) && !tasks_.failed_locked()
                               ? nullptr
                               : tasks_.take_error_locked();
    if (e) {
      lk.unlock();
      std::rethrow_exception(e);
    }
  }

  // A value left: move overflow into the channel and start tasks held back for room.
  void after_pop_locked() {
    attention_.store(false, std::memory_order_relaxed);
    refill_locked();
    if (!overflow_.empty()) attention_.store(true, std::memory_order_release);
    tasks_.admit_pending_locked();  // sets attention_ again if there is still no room
  }

  void refill_locked() {
    while (!overflow_.empty() &&
           channel_.try_push(std::optional<T>(std::move(overflow_.front()))) ==
               boost::fibers::channel_op_status::success)
      overflow_.pop_front();
  }

  T& current() {
    fetch();
    if (!current_)
      throw std::logic_error("fiberutils: dereferencing the iterator of a stream that has ended");
    return *current_;
  }
  void advance() {
    if (ended_)
      throw std::logic_error("fiberutils: incrementing the iterator of a stream that has ended");
    if (current_)
      current_.reset();
    else
      ++skip_;
  }
  bool at_end() {
    fetch();
    return ended_;
  }

  TaskGroup& tasks_;
  boost::fibers::buffered_channel<std::optional<T>> channel_{kStreamCapacity};
  std::deque<T> overflow_;                   // behind the channel; mutex
  std::atomic<bool> attention_{false};       // see the file comment
  std::atomic<bool> consumer_parked_{false};
  std::atomic<bool> cancelled_{false};       // written under the mutex
  Park* consumer_park_ = nullptr;            // mutex
  // Consumer-only state (one consumer at a time).
  bool ended_ = false;
  std::optional<T> current_;
  std::size_t skip_ = 0;
};

struct BodyTag {};

// A stream with its tasks. Self is Yielder<T> or OrderedYielder<T>, what yielding() bodies get.
template <class Self, class T, bool kInSpawnOrder>
class BasicStream : public StreamCore<T> {
  using Core = StreamCore<T>;

 public:
  BasicStream() : BasicStream(Limit{0}, default_stack_size()) {}
  explicit BasicStream(std::ptrdiff_t limit, StackSize stack = default_stack_size())
      : BasicStream(Limit{checked_limit(limit, "fiberutils: a stream")}, stack) {}
  explicit BasicStream(fail_fast_t) : BasicStream(Limit{0}, default_stack_size(), true) {}
  BasicStream(std::ptrdiff_t limit, fail_fast_t, StackSize stack = default_stack_size())
      : BasicStream(Limit{checked_limit(limit, "fiberutils: a stream")}, stack, true) {}
  // Used by fu::yielding()/ordered_yielding(): `body(self)` runs as a task that holds no slot.
  template <class Body>
  BasicStream(BodyTag, std::size_t limit, Body&& body)
      : BasicStream(Limit{limit}, default_stack_size()) {
    static_assert(std::is_invocable_v<std::decay_t<Body>&, Self&>,
                  "fiberutils: a yielding body must be callable as body(stream&)");
    tasks_.spawn_with(BodySink{}, [this, b = std::forward<Body>(body)]() mutable {
      std::invoke(b, static_cast<Self&>(*this));
    });
  }

  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    // Misuse stops at the library's message: nothing below is instantiated then.
    if constexpr (!task_invocable_v<F, Args...>)
      static_assert(always_false_v<F>,
                    "fiberutils: spawn(f, args...) needs f callable as f(args...) or "
                    "f(std::stop_token, args...) with decay-copied arguments");
    else if constexpr (!yields_into_v<T, task_result_t<F, Args...>>)
      static_assert(always_false_v<F>,
                    "fiberutils: a stream's task must return T, std::optional<T> or void");
    else
      spawn_checked(std::forward<F>(f), std::forward<Args>(args)...);
  }

 private:
  template <class F, class... Args>
  void spawn_checked(F&& f, Args&&... args) {
    if constexpr (kInSpawnOrder) {
      const std::uint64_t seq = reserve();
      try {
        tasks_.spawn_with(Sink{this, seq}, std::forward<F>(f), std::forward<Args>(args)...);
      } catch (...) {
        settle(seq, std::nullopt);
        throw;
      }
    } else {
      tasks_.spawn_with(Sink{this, 0}, std::forward<F>(f), std::forward<Args>(args)...);
    }
  }

 public:
  void put(T v) {
    if (this_task::stop_requested()) throw cancelled{};
    if constexpr (kInSpawnOrder) {
      std::lock_guard<std::mutex> lk(tasks_.mutex());
      if (order_.empty()) {
        ++base_;
        this->push_locked(std::move(v));
      } else {
        order_.push_back(Place{std::optional<T>(std::move(v)), true});
      }
    } else {
      this->push(std::move(v));
    }
  }

  void cancel() noexcept { tasks_.cancel(); }
  std::size_t size() const noexcept { return tasks_.size(); }
  std::size_t dropped_exceptions() const noexcept { return tasks_.dropped_exceptions(); }

 private:
  struct Limit {
    std::size_t n;  // 0: none
  };
  BasicStream(Limit limit, StackSize stack, bool fail_fast = false)
      : Core(tasks_), tasks_(stack, limit.n, this->gate(), fail_fast) {
    tasks_.set_kind(kInSpawnOrder ? "OrderedYielder" : "Yielder");  // for fu::live_tasks()
  }

  // Delivers a task's result: at once, or into its place in the order.
  struct Sink {
    static constexpr bool kAdmitted = true;
    BasicStream* s;
    std::uint64_t seq;
    bool settled = false;
    template <class R>
    void deliver(R&& r) {
      settled = true;
      std::optional<T> v = yielded_value<T>(std::forward<R>(r));
      if constexpr (kInSpawnOrder) {
        s->settle(seq, std::move(v));
      } else if (v) {
        s->push(std::move(*v));
      }
    }
    void deliver_nothing() { abandon_if_undelivered(); }
    // An exception, or a task that never ran: its place is skipped.
    void abandon_if_undelivered() {
      if constexpr (kInSpawnOrder)
        if (!settled) s->settle(seq, std::nullopt);
      settled = true;
    }
  };

  // A place in the order: settled once its task finished (with or without a value).
  struct Place {
    std::optional<T> value;
    bool settled = false;
  };

  std::uint64_t reserve() {
    std::lock_guard<std::mutex> lk(tasks_.mutex());
    order_.emplace_back();
    return base_ + order_.size() - 1;
  }

  // Settles a place (once) and releases every value that no longer waits for an earlier one.
  void settle(std::uint64_t seq, std::optional<T>&& v) {
    std::lock_guard<std::mutex> lk(tasks_.mutex());
    if (seq < base_) return;  // settled and released already
    Place& p = order_[static_cast<std::size_t>(seq - base_)];
    if (p.settled) return;
    p.settled = true;
    p.value = std::move(v);
    while (!order_.empty() && order_.front().settled) {
      if (order_.front().value) this->push_locked(std::move(*order_.front().value));
      order_.pop_front();
      ++base_;
    }
  }

  std::deque<Place> order_;  // OrderedYielder: places from base_ on not released yet; mutex
  std::uint64_t base_ = 0;   // sequence number of order_.front()
  TaskGroup tasks_;          // last: its destructor waits for the tasks while the rest is alive
};

// An input iterator over a stream; the default-constructed one is end(). It waits in operator*
// and in the comparison with end(), never in operator++ (so views::take(n) stops after n values
// without waiting for one more).
template <class T>
class StreamIterator {
 public:
  using iterator_concept = std::input_iterator_tag;
  using iterator_category = std::input_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using pointer = T*;

  StreamIterator() = default;

  T& operator*() const { return stream()->current(); }
  T* operator->() const { return &stream()->current(); }
  StreamIterator& operator++() {
    stream()->advance();
    return *this;
  }
  // Legacy input iterators need *it++: the proxy holds the value taken out of the stream.
  struct PostIncrement {
    T value;
    T& operator*() { return value; }
  };
  PostIncrement operator++(int) {
    PostIncrement p{std::move(**this)};
    ++*this;
    return p;
  }

  friend bool operator==(const StreamIterator& a, const StreamIterator& b) {
    return a.ended() == b.ended();
  }

 private:
  template <class>
  friend class StreamCore;
  explicit StreamIterator(StreamCore<T>* s) : s_(s) {}
  StreamCore<T>* stream() const {
    if (!s_) throw std::logic_error("fiberutils: using a stream's end() iterator");
    return s_;
  }
  bool ended() const { return !s_ || s_->at_end(); }

  StreamCore<T>* s_ = nullptr;
};

}  // namespace fiberutils::detail
