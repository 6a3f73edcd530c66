// SPDX-License-Identifier: Apache-2.0
//
// Internal: a task is a queued callable, not a fiber. Runner fibers (lib/executor.cpp) take
// tasks in FIFO order and run them; a task that has not started holds no stack.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fiberutils::detail {

class TaskGroup;

// Type-erased task. `run()` invokes the user's callable and hands its result to the owner
// (a stream, for example); the runner records what it throws. Destroyed by the runner right
// after `run()` returns or throws, before the group learns that the task finished, so captured
// objects never outlive the group.
class TaskBase {
 public:
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;
  // noexcept(false): a captured object whose destructor throws is reported like a task error.
  virtual ~TaskBase() noexcept(false) = default;

  virtual void run() = 0;
  // False for a task that starts without admission (a stream's body) and so holds no slot.
  virtual bool holds_slot() const noexcept = 0;

  // Kept to three words: a million queued tasks are a million of these. The stop token is not
  // stored: it is the group's, read when needed (see TaskGroup::task_token).
  TaskBase* next_ = nullptr;     // intrusive FIFO link (TaskQueue)
  TaskGroup* group_ = nullptr;   // set by TaskGroup::submit

  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;

 protected:
  TaskBase() = default;
};

// Intrusive FIFO of tasks; not synchronised (its owner guards it).
class TaskQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  void push(TaskBase* t) noexcept {
    t->next_ = nullptr;
    if (tail_) tail_->next_ = t; else head_ = t;
    tail_ = t;
    ++size_;
  }
  void push_front(TaskBase* t) noexcept {
    t->next_ = head_;
    head_ = t;
    if (!tail_) tail_ = t;
    ++size_;
  }
  TaskBase* pop() noexcept {
    TaskBase* t = head_;
    head_ = t->next_;
    if (!head_) tail_ = nullptr;
    t->next_ = nullptr;
    --size_;
    return t;
  }

 private:
  TaskBase* head_ = nullptr;
  TaskBase* tail_ = nullptr;
  std::size_t size_ = 0;
};

// The task the calling fiber is running, or nullptr outside tasks (lib/executor.cpp). Never
// suspends.
TaskBase* current_task() noexcept;

// f is invoked as std::jthread would: with the task's stop token first when it accepts one.
template <class F, class... Args>
inline constexpr bool takes_stop_token_v =
    std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;

template <class F, class... Args>
inline constexpr bool task_invocable_v =
    takes_stop_token_v<F, Args...> || std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>;

template <class F, class... Args>
struct task_result {
  using type = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
};
template <class F, class... Args>
  requires takes_stop_token_v<F, Args...>
struct task_result<F, Args...> {
  using type = std::invoke_result_t<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;
};
template <class F, class... Args>
using task_result_t = typename task_result<F, Args...>::type;

// For a static_assert that fires only in the branch of an `if constexpr` that is instantiated.
template <class...>
inline constexpr bool always_false_v = false;

// The concrete task: decay-copies of f and args, and a Sink that receives what f returns.
// Sink is empty for groups; streams use it to deliver values.
template <class Sink, class F, class... Args>
class Task final : public TaskBase {
 public:
  template <class Fw, class... Aw>
  Task(Sink sink, Fw&& f, Aw&&... args)
      : sink_(std::move(sink)), f_(std::forward<Fw>(f)), args_(std::forward<Aw>(args)...) {}

  void run() override {
    using R = task_result_t<F, Args...>;
    if constexpr (std::is_void_v<R>) {
      invoke();
      sink_.deliver_nothing();
    } else {
      sink_.deliver(invoke());
    }
  }

  ~Task() noexcept(false) override { sink_.abandon_if_undelivered(); }

  bool holds_slot() const noexcept override { return Sink::kAdmitted; }

 private:
  decltype(auto) invoke() {
    return std::apply(
        [this](auto&... a) -> decltype(auto) {
          if constexpr (takes_stop_token_v<F, Args...>)
            return std::invoke(std::move(f_), group_token(), std::move(a)...);
          else
            return std::invoke(std::move(f_), std::move(a)...);
        },
        args_);
  }

  std::stop_token group_token() const noexcept;

  [[no_unique_address]] Sink sink_;
  std::decay_t<F> f_;
  std::tuple<std::decay_t<Args>...> args_;
};

// The sink of a group's tasks: results are discarded.
struct DiscardResult {
  static constexpr bool kAdmitted = true;
  template <class T>
  void deliver(T&&) noexcept {}
  void deliver_nothing() noexcept {}
  void abandon_if_undelivered() noexcept {}
};

// The sink of a stream's body task (fu::yielding): started without admission, holds no slot.
struct BodySink : DiscardResult {
  static constexpr bool kAdmitted = false;
};

}  // namespace fiberutils::detail
