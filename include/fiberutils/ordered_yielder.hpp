// SPDX-License-Identifier: Apache-2.0
//
// fu::OrderedYielder<T>: a Yielder whose values come in the order of the spawn() and put()
// calls that produced them.
//
// A spawn takes its place in the order when spawn() is called, nested spawns from inside tasks
// included; a task that yields nothing (void, an empty optional, an exception, a cancel) holds
// its place until it finishes and is then skipped. Only values that wait for an earlier one are
// held back; everything else (suspension, memory, errors, cancellation, thread-safety,
// destructor) is as for fu::Yielder.
//
// Example (results in spawn order, whatever order the tasks finish in):
//   fu::OrderedYielder<std::string> pages(4);     // at most 4 fetches at once
//   for (auto& url : urls) pages.spawn(fetch, url);
//   for (std::string& body : pages) consume(body);
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <ranges>
#include <utility>

#include <fiberutils/detail/stream.hpp>
#include <fiberutils/stack_size.hpp>
#include <fiberutils/yielder.hpp>

namespace fiberutils {

template <class T>
class OrderedYielder : public detail::StreamCore<T> {
  using Core = detail::StreamCore<T>;

 public:
  OrderedYielder() : Core(0, default_stack_size()) {}
  explicit OrderedYielder(std::ptrdiff_t limit, StackSize stack = default_stack_size())
      : Core(detail::checked_stream_limit(limit), stack) {}
  template <class Body>
  OrderedYielder(detail::BodyTag, std::ptrdiff_t limit, Body&& body)
      : Core(limit, default_stack_size()) {
    detail::spawn_body(*this, std::forward<Body>(body));
  }
  ~OrderedYielder() override {
    this->cancel_for_destruction();  // discards unconsumed values, lets held-back tasks end
    this->shutdown();
  }

  // spawn(f, args...): Yielder::spawn, taking its place in the order now. Never suspends.
  template <class F, class... Args>
  void spawn(F&& f, Args&&... args) {
    FIBERUTILS_CHECK_STREAM_SPAWN(T, F, Args);
    const std::uint64_t seq = reserve();
    try {
      this->spawn_with(Sink{this, seq}, std::forward<F>(f), std::forward<Args>(args)...);
    } catch (...) {
      settle(seq, std::nullopt);
      throw;
    }
  }

  // put(v) yields v in its place in the order. Never suspends; inside a task, a cancellation
  // point.
  void put(T v) {
    Core::check_put_allowed();
    std::lock_guard<std::mutex> lk(this->m_);
    if (order_.empty()) {
      ++base_;
      this->deliver_locked(std::move(v));
      return;
    }
    order_.push_back(Place{std::optional<T>(std::move(v)), true});
  }

  void cancel() noexcept { this->cancel_stream(); }

 private:
  template <class Stream, class Body>
  friend void detail::spawn_body(Stream&, Body&&);
  template <class Body>
  void spawn_body_task(Body&& body) {
    this->spawn_with(detail::BodySink{}, std::forward<Body>(body));
  }

  // A place in the order: settled once its task finished (with or without a value).
  struct Place {
    std::optional<T> value;
    bool settled = false;
  };

  struct Sink {
    static constexpr bool kAdmitted = true;
    OrderedYielder* y;
    std::uint64_t seq;
    bool settled = false;
    template <class R>
    void deliver(R&& r) {
      settled = true;
      if constexpr (detail::is_optional_v<std::remove_cvref_t<R>>) {
        y->settle(seq, r ? std::optional<T>(T(std::move(*r))) : std::nullopt);
      } else {
        y->settle(seq, std::optional<T>(T(std::forward<R>(r))));
      }
    }
    void deliver_nothing() {
      settled = true;
      y->settle(seq, std::nullopt);
    }
    // An exception, or a task that never ran: its place is skipped.
    void abandon_if_undelivered() {
      if (!settled) y->settle(seq, std::nullopt);
    }
  };

  std::uint64_t reserve() {
    std::lock_guard<std::mutex> lk(this->m_);
    order_.emplace_back();
    return base_ + order_.size() - 1;
  }

  // Settles a place (once) and releases every value that no longer waits for an earlier one.
  void settle(std::uint64_t seq, std::optional<T>&& v) {
    std::lock_guard<std::mutex> lk(this->m_);
    if (seq < base_) return;  // settled and released already
    Place& p = order_[static_cast<std::size_t>(seq - base_)];
    if (p.settled) return;
    p.settled = true;
    p.value = std::move(v);
    while (!order_.empty() && order_.front().settled) {
      if (order_.front().value) this->deliver_locked(std::move(*order_.front().value));
      order_.pop_front();
      ++base_;
    }
  }

  std::deque<Place> order_;  // places from base_ on that are not released yet
  std::uint64_t base_ = 0;   // sequence number of order_.front()
};

template <class T, class Body>
OrderedYielder<T> ordered_yielding(Body&& body) {
  return OrderedYielder<T>(detail::BodyTag{}, 0, std::forward<Body>(body));
}
template <class T, class Body>
OrderedYielder<T> ordered_yielding(std::ptrdiff_t limit, Body&& body) {
  return OrderedYielder<T>(detail::BodyTag{}, detail::checked_stream_limit(limit),
                           std::forward<Body>(body));
}

}  // namespace fiberutils

// size() counts unfinished tasks, not the values still to come: without this, std::ranges would
// take a stream for a sized range and ranges::size / ranges::distance would return the task count.
template <class T>
inline constexpr bool std::ranges::disable_sized_range<fiberutils::OrderedYielder<T>> = true;
