// SPDX-License-Identifier: Apache-2.0
//
// Internal: what Yielder and OrderedYielder share. A StreamCore is a TaskGroup (the same task
// machinery as Group and Pool) whose finished tasks hand values to one consumer through a
// boost::fibers::buffered_channel drained lazily by an input iterator.
//
// Flow and memory:
// - Values ready for the consumer ("deliverable") go into the channel, or into `overflow_` when
//   it is full, so producers never block: the owner may put or spawn any amount before iterating.
// - Backpressure is applied by not *starting* work: a queued task is admitted only while fewer
//   than kCapacity values wait to be consumed (and a slot is free when the stream has a limit).
//   A queued task holds no stack, so a slow consumer bounds memory. Sleeping tasks hold no value,
//   so they do not cap concurrency.
// - The consumer waits on the park (detail/park.hpp); producers, the last task's end and cancel()
//   wake it under m_.
//
// Locking: TaskGroup::m_ guards everything here, channel pushes included, so "the consumer is
// about to wait" and "nothing more will come" are decided under one lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
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
#include <fiberutils/semaphore.hpp>
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

#define FIBERUTILS_CHECK_STREAM_SPAWN(T, F, Args)                                             \
  FIBERUTILS_CHECK_SPAWN_ARGS(F, Args);                                                       \
  static_assert(::fiberutils::detail::yields_into_v<T, ::fiberutils::detail::task_result_t<F, Args...>>, \
                "fiberutils: a stream's task must return T, std::optional<T> or void")

template <class T>
class StreamIterator;

template <class T>
class StreamCore : protected TaskGroup {
 public:
  using TaskGroup::size;

  StreamIterator<T> begin() { return StreamIterator<T>(this); }
  StreamIterator<T> end() { return StreamIterator<T>(); }

 protected:
  StreamCore(std::ptrdiff_t limit, StackSize stack) : TaskGroup(stack) {
    if (limit < 0) throw std::invalid_argument("fiberutils: a stream's limit must be >= 1");
    if (limit > 0) slots_.emplace(limit);
  }

  // Stop tasks, wait for them; values not consumed are discarded with the channel.
  void cancel_stream() noexcept {
    {
      std::lock_guard<std::mutex> lk(m_);
      cancelled_.store(true, std::memory_order_release);
      wake_consumer_locked();
    }
    TaskGroup::cancel();
  }

  // The destructors' first step: cancel_stream(), then tasks held back for room in a full
  // buffer (nothing will be consumed any more) start here, on the owner's thread, meet their
  // stop and end; otherwise shutdown() would wait for them forever. Not done in cancel_stream()
  // because cancel() may come from a thread that runs no fibers.
  void cancel_for_destruction() noexcept {
    cancel_stream();
    std::lock_guard<std::mutex> lk(m_);
    admit_pending_locked();
  }

  // Hands a value to the consumer, in order; m_ held. Never suspends.
  void deliver_locked(T&& v) {
    if (cancelled_ || ended_) return;  // nobody will read it
    deliverable_.fetch_add(1, std::memory_order_seq_cst);
    if (overflow_.empty()) {
      std::optional<T> item(std::move(v));
      if (channel_.try_push(std::move(item)) == boost::fibers::channel_op_status::success) {
        wake_consumer_locked();
        return;
      }
      v = std::move(*item);  // try_push leaves the value where it was when the channel is full
    }
    overflow_.push_back(std::move(v));
    attention_.store(true, std::memory_order_seq_cst);
  }

  // Put from the owner or a task: never suspends; inside a task, a cancellation point.
  static void check_put_allowed() {
    if (this_task::stop_requested()) throw cancelled{};
  }

  bool try_admit_locked() noexcept override {
    if (!cancelled_.load(std::memory_order_relaxed) &&
        deliverable_.load(std::memory_order_seq_cst) >= kStreamCapacity) {
      // Ask the consumer to admit after its next pop. It pops without the lock, so announce
      // first and look again: of the two (its decrement then its look at attention_, our store
      // then our look at deliverable_), at least one sees the other.
      attention_.store(true, std::memory_order_seq_cst);
      if (deliverable_.load(std::memory_order_seq_cst) >= kStreamCapacity) return false;
    }
    return !slots_ || slots_->try_acquire();
  }
  void release_locked() noexcept override {
    if (slots_) slots_->release();
  }
  void on_idle_locked() noexcept override { wake_consumer_locked(); }

 private:
  friend class StreamIterator<T>;

  void wake_consumer_locked() noexcept {
    if (consumer_park_) std::exchange(consumer_park_, nullptr)->wake();
  }

  // The consumer side: fills current_ with the next value, or sets ended_. Suspends while
  // nothing is ready; a cancellation point when the consumer is a task.
  void fetch() {
    if (current_ || ended_) return;
    // Fast path, without the lock: a value is waiting in the channel.
    TaskBase* self = current_task();
    if (self && self->group_->task_stop_requested()) throw cancelled{};
    std::optional<T> item;
    while (!cancelled_.load(std::memory_order_acquire) &&
           channel_.try_pop(item) == boost::fibers::channel_op_status::success) {
      deliverable_.fetch_sub(1, std::memory_order_seq_cst);
      if (attention_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lk(m_);
        after_pop_locked();
      }
      if (skip_ > 0) {
        --skip_;
        continue;
      }
      current_ = std::move(item);
      return;
    }
    slow_fetch(self ? self->group_->task_token() : std::stop_token{});
  }

  void slow_fetch(const std::stop_token& stop) {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      if (stop.stop_requested()) throw cancelled{};
      std::optional<T> item;
      // After cancel() the values still buffered are discarded, as on the fast path.
      if (!cancelled_ && channel_.try_pop(item) == boost::fibers::channel_op_status::success) {
        if (take_locked(std::move(item))) return;
        continue;
      }
      if (!cancelled_ && !overflow_.empty()) {
        refill_locked();
        continue;
      }
      if (cancelled_ || count_locked() == 0) {
        ended_ = true;
        std::exception_ptr e = cancelled_ ? nullptr : take_error_locked();
        if (e) {
          lk.unlock();
          std::rethrow_exception(e);
        }
        return;
      }
      // Producers push and wake under m_, so nothing can arrive between our look and parking.
      Park p;
      consumer_park_ = &p;
      lk.unlock();
      (void)p.wait(stop, std::nullopt);
      lk.lock();
      if (consumer_park_ == &p) consumer_park_ = nullptr;  // a stop woke us, not a producer
    }
  }

  // A value reached the consumer: it leaves room for another, so admit queued tasks. Returns
  // false when the value is to be skipped (operator++ without a dereference).
  bool take_locked(std::optional<T>&& item) {
    deliverable_.fetch_sub(1, std::memory_order_seq_cst);
    after_pop_locked();
    if (skip_ > 0) {
      --skip_;
      return false;
    }
    current_ = std::move(item);
    return true;
  }

  // A value left: move overflow into the channel and start tasks held back for room.
  void after_pop_locked() {
    attention_.store(false, std::memory_order_seq_cst);
    refill_locked();
    if (!overflow_.empty()) attention_.store(true, std::memory_order_seq_cst);
    admit_pending_locked();  // sets attention_ again if the buffer is still full
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

  boost::fibers::buffered_channel<std::optional<T>> channel_{kStreamCapacity};
  std::deque<T> overflow_;
  // Values in channel_ and overflow_. Atomic because the consumer pops without the lock.
  std::atomic<std::size_t> deliverable_{0};
  // Set (under m_) when the consumer's next pop must take the lock: values wait in overflow_,
  // or tasks wait for room in the buffer.
  std::atomic<bool> attention_{false};
  std::optional<Semaphore> slots_;
  Park* consumer_park_ = nullptr;  // the consumer, while it waits for a value or the end
  std::atomic<bool> cancelled_{false};  // written under m_; read by the fast path too
  // Consumer-only state (one consumer at a time).
  bool ended_ = false;
  std::optional<T> current_;
  std::size_t skip_ = 0;
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
  friend class StreamCore<T>;
  explicit StreamIterator(StreamCore<T>* s) : s_(s) {}
  StreamCore<T>* stream() const {
    if (!s_) throw std::logic_error("fiberutils: using a stream's end() iterator");
    return s_;
  }
  bool ended() const { return !s_ || s_->at_end(); }

  StreamCore<T>* s_ = nullptr;
};

}  // namespace fiberutils::detail
