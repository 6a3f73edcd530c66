// SPDX-License-Identifier: Apache-2.0
//
// fiberutils + Boost.Asio: fibers that do IO. The only fiberutils header that includes Asio.
//
// fu::IoScheduler makes the calling thread run an io_context's handlers and its fibers together;
// fu::use_fiber is an Asio completion token that suspends only the calling fiber until the
// operation's handler ran, and returns what the handler received. Code reads like blocking socket
// calls, thousands of connections share one thread, and there is no co_await anywhere.
//
// Example:
//   boost::asio::io_context io;
//   fu::IoScheduler sched(io);      // this thread's fibers and io's handlers share the thread
//   fu::Group g;
//   g.spawn([&] {
//     tcp::socket s(io);
//     s.async_connect(ep, fu::use_fiber);                      // suspends this fiber only
//     std::size_t n = s.async_read_some(buf, fu::use_fiber);   // the handler's result
//     boost::system::error_code ec;
//     n = s.async_read_some(buf, boost::asio::redirect_error(fu::use_fiber, ec));  // no throw
//   });
//   g.join();                       // tasks, IO and timers all run while main waits here
//
// What blocks the thread: nothing in fiberutils. A *synchronous* Asio call (s.read_some(buf),
// resolver.resolve(...), anything without a completion token) blocks the whole thread, every
// fiber on it and every handler of its io_context, as does any other blocking system call. Only
// the async_* forms with fu::use_fiber suspend just the calling fiber.
#pragma once

#include <utility>  // before Asio: under C++20 <boost/asio/awaitable.hpp> needs it (FACTS.md)

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <tuple>
#include <type_traits>

#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_datagram_socket.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <fiberutils/cancelled.hpp>
#include <fiberutils/detail/park.hpp>

namespace fiberutils {

// fu::IoScheduler is the scheduling of one thread's fibers around one io_context: from its
// construction to its destruction the thread runs io's handlers and its fibers together.
//
// - Fairness: ready handlers run between fibers, at most a bounded batch per round of the ready
//   fibers, so a busy fiber that yields (fu::this_task::yield) lets completions through and a
//   stream of completions does not hold back ready fibers.
// - Idle: when no fiber is ready the thread waits in io's reactor (epoll) until the next IO
//   event, the next fiber deadline (this_task::sleep_for, timed waits: an Asio timer armed at
//   that deadline) or a wake-up from another thread (a Semaphore::release, a Group::cancel, a
//   spawn: each posts a no-op into io). No polling interval, no spinning.
// - Handlers run on the thread's Boost.Fiber dispatcher fiber: a plain callback handler must not
//   suspend (no fiberutils waits, no use_fiber inside a callback); fu::use_fiber's handlers only
//   store a result and wake a fiber. An exception escaping a handler terminates the program.
// - Tasks that exist already on the thread (queued, ready, sleeping or waiting) keep going under
//   the new scheduling: Boost moves the ready fibers across, and the others are woken into it.
// - io is kept from running out of work while the IoScheduler lives (a work guard); io.stop()
//   does not stop it (a stopped io is restarted at the next idle wait).
// - Other threads may run io too (io.run()): handlers then run there and wake fibers remotely.
//
// - Blocks the thread: only while no fiber is ready (in io's reactor, as io.run() would).
// - Thread-safe: no. Fiber-local: construct and destroy it on the thread it drives, outside any
//   task (in plain code such as main), with io outliving it.
// - Destructor: restores the scheduling the thread had before. Fibers still suspended in a
//   use_fiber wait stay suspended until some thread runs io again: destroy the IoScheduler after
//   the Groups whose tasks do IO (declare it before them).
class IoScheduler {
 public:
  // IoScheduler(io) makes the calling thread run io with its fibers. Throws std::logic_error when
  // the thread has an IoScheduler already (that one keeps working, io untouched).
  explicit IoScheduler(boost::asio::io_context& io);
  IoScheduler(const IoScheduler&) = delete;
  IoScheduler& operator=(const IoScheduler&) = delete;
  ~IoScheduler();

  // context() is the io_context this thread runs. Never suspends.
  boost::asio::io_context& context() const noexcept { return io_; }

 private:
  struct Impl;
  boost::asio::io_context& io_;
  Impl* impl_ = nullptr;
};

// fu::use_fiber: the completion token for fibers.
//
// `x.async_op(args..., fu::use_fiber)` starts the operation, suspends the calling fiber until its
// handler ran, and returns what the handler received after its error code: nothing (void), one
// value, or a std::tuple of several. A non-zero error code is thrown as
// boost::system::system_error; with `boost::asio::redirect_error(fu::use_fiber, ec)` it is stored
// in ec instead and the call returns normally. Works in tasks and in plain code (the main fiber)
// on a thread with an IoScheduler; without one it throws std::logic_error before starting the
// operation. Suspends the calling fiber; never blocks the thread.
//
// Cancellation point. A stop requested before the call throws fu::cancelled without starting
// the operation. A stop requested while it waits cancels the operation, then keeps waiting
// (without the stop) until its handler has run, so no handler ever writes into a buffer of a
// stack that has unwound, and then throws fu::cancelled (even if the operation completed).
// Asio 1.74 has no per-operation cancellation: what is cancelled is the IO object, by its own
// cancel(), which also ends its other pending operations (they complete with
// boost::asio::error::operation_aborted). fiberutils finds the IO object for
// - the member async_* operations of Asio's IO objects with the default executor: TCP and UDP
//   sockets, tcp::acceptor, local::stream_protocol sockets, steady_timer, system_timer,
//   signal_set, the TCP and UDP resolvers, posix::stream_descriptor;
// - Asio's composed operations on a stream: async_read, async_write, async_read_until,
//   async_connect (on a range of endpoints);
// - operations that pass their IO object's address as the first argument of the initiation, as
//   Boost.Beast's do (http::async_read/async_write, beast::tcp_stream): its cancel() is called.
// For any other operation (asio::post, an IO object fiberutils does not know) nothing can be
// cancelled: a stop makes the fiber wait until the operation completes on its own.
struct use_fiber_t {};
inline constexpr use_fiber_t use_fiber{};

namespace detail {

// Throws std::logic_error unless the calling thread has an IoScheduler.
void require_io_scheduler();

// The rendezvous of one use_fiber operation, on the waiting fiber's stack, for its one waiter:
// one word that is empty, the waiter's Park, or done. Lock-free because it is paid twice per
// echo round trip (a mutex here was three lock/unlock pairs per operation). The completer takes
// the Park with the same exchange that marks the operation done, so the waiter (woken by a stop
// meanwhile) finds out that a wake-up is under way and must not let its Park die before that
// wake-up has finished: it waits for `done`, which the completer stores last, after wake().
class IoWait {
 public:
  // complete() is called by the handler once its result is stored. Any thread.
  void complete() noexcept {
    const std::uintptr_t w = word_.exchange(kWaking, std::memory_order_acq_rel);
    if (w != kEmpty) reinterpret_cast<Park*>(w)->wake();
    word_.store(kDone, std::memory_order_release);  // the last touch: the waiter may leave now
  }
  // wait(stop) suspends until complete() (true) or until stop is requested first (false).
  bool wait(const StopCondition& stop) {
    for (;;) {
      std::uintptr_t w = word_.load(std::memory_order_acquire);
      if (w != kEmpty) return finish();
      if (stop.stop_requested()) return false;
      Park p(WaitKind::io, stop.waiter());  // live_tasks() shows "io"
      const auto mine = reinterpret_cast<std::uintptr_t>(&p);
      if (!word_.compare_exchange_strong(w, mine, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        return finish();  // completed before the Park was in
      (void)p.wait(stop);
      w = mine;
      if (!word_.compare_exchange_strong(w, kEmpty, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        return finish();  // the completer has the Park: it is woken or being woken
      // Still pending: the stop woke us (the loop returns false) or nothing did (parks again).
    }
  }

 private:
  static constexpr std::uintptr_t kEmpty = 0, kWaking = 1, kDone = 2;

  // The operation completed; a complete() on another thread may still be in wake(): wait it out
  // (the length of one wake-up; on the waiter's own thread complete() has finished already).
  bool finish() noexcept {
    while (word_.load(std::memory_order_acquire) != kDone) std::this_thread::yield();
    return true;
  }

  std::atomic<std::uintptr_t> word_{kEmpty};
};

// What cancels the IO object behind an operation: a type-erased call of its cancel().
struct IoCancel {
  void* object = nullptr;
  void (*fn)(void*) noexcept = nullptr;
  void operator()() const noexcept {
    if (fn) fn(object);
  }
};

template <class T>
void cancel_io_object(void* p) noexcept {
  T& o = *static_cast<T*>(p);
  try {
    if constexpr (requires(boost::system::error_code& ec) { o.cancel(ec); }) {
      boost::system::error_code ec;  // a closed object has nothing pending: ignore its error
      o.cancel(ec);
    } else {
      o.cancel();
    }
  } catch (...) {
  }
}

template <class T>
concept CancellableIo = requires(T& o) { o.cancel(); } ||
                        requires(T& o, boost::system::error_code& ec) { o.cancel(ec); };

// IoObjectOf<Initiation>::type is the IO object that an Asio 1.74 initiation object points at,
// void when fiberutils does not know the initiation. The member operations' initiations are
// private nested classes of the IO objects holding one member, `self_`, the object's address:
// C++20 lets explicit specializations name them (P0692), and a standard-layout object is
// pointer-interconvertible with its first member, which is how the address is read. The
// composed operations' initiations hold one reference to the stream; that one is read as the
// pointer it is stored as (every ABI fiberutils builds on stores a reference member so). Both
// layouts are checked at compile time (io_object_of below); a later Asio that changes them
// fails to compile here instead of cancelling the wrong object.
template <class Init>
struct IoObjectOf {
  using type = void;
  static constexpr bool by_reference = false;
};

#define FIBERUTILS_ASIO_MEMBER_OP(IO, INIT)          \
  template <>                                        \
  struct IoObjectOf<IO::INIT> {                      \
    using type = IO;                                 \
    static constexpr bool by_reference = false;      \
  };
namespace asio_types {
namespace net = boost::asio;
using tcp_socket_base = net::basic_socket<net::ip::tcp>;
using tcp_socket = net::basic_stream_socket<net::ip::tcp>;
using udp_socket_base = net::basic_socket<net::ip::udp>;
using udp_socket = net::basic_datagram_socket<net::ip::udp>;
using local_socket_base = net::basic_socket<net::local::stream_protocol>;
using local_socket = net::basic_stream_socket<net::local::stream_protocol>;
using tcp_acceptor = net::basic_socket_acceptor<net::ip::tcp>;
using tcp_resolver = net::ip::basic_resolver<net::ip::tcp>;
using udp_resolver = net::ip::basic_resolver<net::ip::udp>;
using descriptor_base = net::posix::basic_descriptor<net::any_io_executor>;
using stream_descriptor = net::posix::basic_stream_descriptor<net::any_io_executor>;
}  // namespace asio_types
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_socket_base, initiate_async_connect)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_socket_base, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_socket, initiate_async_send)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_socket, initiate_async_receive)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket_base, initiate_async_connect)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket_base, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket, initiate_async_send)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket, initiate_async_send_to)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket, initiate_async_receive)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_socket, initiate_async_receive_from)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::local_socket_base, initiate_async_connect)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::local_socket_base, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::local_socket, initiate_async_send)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::local_socket, initiate_async_receive)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_acceptor, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_acceptor, initiate_async_accept)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_acceptor, initiate_async_move_accept)
FIBERUTILS_ASIO_MEMBER_OP(boost::asio::steady_timer, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(boost::asio::system_timer, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(boost::asio::signal_set, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::tcp_resolver, initiate_async_resolve)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::udp_resolver, initiate_async_resolve)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::descriptor_base, initiate_async_wait)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::stream_descriptor, initiate_async_read_some)
FIBERUTILS_ASIO_MEMBER_OP(asio_types::stream_descriptor, initiate_async_write_some)
#undef FIBERUTILS_ASIO_MEMBER_OP

#define FIBERUTILS_ASIO_COMPOSED_OP(INIT)                          \
  template <class Stream>                                          \
  struct IoObjectOf<boost::asio::detail::INIT<Stream>> {           \
    using type = Stream;                                           \
    static constexpr bool by_reference = true;                     \
  };
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_buffer_sequence)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_dynbuf_v1)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_dynbuf_v2)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_write_buffer_sequence)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_write_dynbuf_v1)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_write_dynbuf_v2)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_until_delim_v1)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_until_delim_v2)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_until_delim_string_v1)
FIBERUTILS_ASIO_COMPOSED_OP(initiate_async_read_until_delim_string_v2)
#undef FIBERUTILS_ASIO_COMPOSED_OP
template <class Protocol, class Executor>
struct IoObjectOf<boost::asio::detail::initiate_async_range_connect<Protocol, Executor>> {
  using type = boost::asio::basic_socket<Protocol, Executor>;
  static constexpr bool by_reference = true;
};

template <class Init>
IoCancel io_object_of(const Init& init) noexcept {
  using Known = IoObjectOf<Init>;
  using T = typename Known::type;
  if constexpr (std::is_void_v<T>) {
    return {};
  } else {
    static_assert((Known::by_reference || std::is_standard_layout_v<Init>) &&
                      sizeof(Init) == sizeof(T*),
                  "fiberutils: this Asio initiation no longer holds just its IO object's "
                  "address; update fiberutils/asio.hpp for this Asio version");
    T* object;
    if constexpr (Known::by_reference)
      std::memcpy(&object, static_cast<const void*>(&init), sizeof object);
    else
      object = *reinterpret_cast<T* const*>(&init);
    return {object, &cancel_io_object<T>};
  }
}

// The IO object behind an operation: from the initiation, else the first initiation argument
// that points at something cancellable (Beast's convention).
template <class Init, class... Args>
IoCancel find_io_object(const Init& init, const Args&... args) noexcept {
  IoCancel c = io_object_of(init);
  if (c.fn) return c;
  auto try_arg = [&c](const auto& a) {
    using A = std::remove_cvref_t<decltype(a)>;
    if constexpr (std::is_pointer_v<A>) {
      using T = std::remove_cv_t<std::remove_pointer_t<A>>;
      if constexpr (CancellableIo<T>)
        if (!c.fn) c = IoCancel{const_cast<T*>(a), &cancel_io_object<T>};
    }
  };
  (try_arg(args), ...);
  (void)try_arg;  // no arguments at all
  return c;
}

// The values a handler of signature void(Args...) passes on: Args without a leading error_code
// or exception_ptr, which becomes the throw.
template <class... Args>
struct IoResultOf {
  static constexpr bool has_error = false;
  using error_type = std::nullptr_t;
  using values = std::tuple<std::decay_t<Args>...>;
};
template <class... Args>
struct IoResultOf<boost::system::error_code, Args...> {
  static constexpr bool has_error = true;
  using error_type = boost::system::error_code;
  using values = std::tuple<std::decay_t<Args>...>;
};
template <class... Args>
struct IoResultOf<std::exception_ptr, Args...> {
  static constexpr bool has_error = true;
  using error_type = std::exception_ptr;
  using values = std::tuple<std::decay_t<Args>...>;
};

template <class Tuple>
struct ReturnOf;
template <>
struct ReturnOf<std::tuple<>> {
  using type = void;
};
template <class T>
struct ReturnOf<std::tuple<T>> {
  using type = T;
};
template <class... T>
struct ReturnOf<std::tuple<T...>> {
  using type = std::tuple<T...>;
};

// The first block of memory an operation asks Asio for (the state of a read, a write, an accept:
// most operations need just one) comes from here, inside the operation's state on the waiting
// fiber's stack; the rest from the heap. Asio recycles an operation's memory only while the
// thread is inside io_context::run or poll, and a fiber starts its operations outside them, so
// without this each use_fiber operation paid a malloc and a free. The slot is handed out once
// and never reused, so giving it back writes nothing: the handler may free it after it woke the
// fiber (whose stack the slot is on).
class IoSlot {
 public:
  void* allocate(std::size_t size) {
    if (used_ || size > sizeof bytes_) return ::operator new(size);
    used_ = true;
    return bytes_;
  }
  void deallocate(void* p) noexcept {
    if (p != static_cast<void*>(bytes_)) ::operator delete(p);
  }

 private:
  alignas(std::max_align_t) unsigned char bytes_[256];
  bool used_ = false;
};

// The handler's associated allocator: Asio allocates the operation's state with it.
template <class T>
struct IoAllocator {
  using value_type = T;
  IoSlot* slot;
  explicit IoAllocator(IoSlot* s) noexcept : slot(s) {}
  template <class U>
  IoAllocator(const IoAllocator<U>& a) noexcept : slot(a.slot) {}  // NOLINT: rebinding
  T* allocate(std::size_t n) {
    if constexpr (alignof(T) > alignof(std::max_align_t))
      return std::allocator<T>().allocate(n);
    else
      return static_cast<T*>(slot->allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if constexpr (alignof(T) > alignof(std::max_align_t))
      std::allocator<T>().deallocate(p, n);
    else
      slot->deallocate(p);
  }
  template <class U>
  bool operator==(const IoAllocator<U>& a) const noexcept {
    return slot == a.slot;
  }
};

// The operation's state on the waiting fiber's stack, and the handler Asio gets: a pointer to it.
template <class... Args>
struct IoOperation {
  using Result = IoResultOf<std::decay_t<Args>...>;
  using Values = typename Result::values;
  using Return = typename ReturnOf<Values>::type;

  IoWait wait;
  IoSlot slot;
  std::optional<Values> values;
  typename Result::error_type error{};

  bool abandoned = false;  // the handler was destroyed without being called

  // Move-only, and only the last moved-to handler refers to the operation: a handler that Asio
  // destroys without calling it (its io_context destroyed or shut down with the operation
  // pending) wakes the fiber with an error instead of leaving it suspended for ever. A moved-from
  // handler keeps the slot: Asio may free memory through the allocator of the handler it moved
  // into the operation.
  struct Handler {
    IoOperation* op;
    IoSlot* slot;
    explicit Handler(IoOperation* o) noexcept : op(o), slot(&o->slot) {}
    Handler(Handler&& h) noexcept : op(std::exchange(h.op, nullptr)), slot(h.slot) {}
    Handler(const Handler&) = delete;
    Handler& operator=(const Handler&) = delete;
    Handler& operator=(Handler&&) = delete;
    ~Handler() {
      if (IoOperation* o = std::exchange(op, nullptr)) {
        o->abandoned = true;
        o->wait.complete();
      }
    }
    using allocator_type = IoAllocator<void>;
    allocator_type get_allocator() const noexcept { return allocator_type(slot); }
    template <class... A>
    void operator()(A&&... a) {
      IoOperation* o = std::exchange(op, nullptr);  // after complete() o may be gone
      o->store(std::forward<A>(a)...);
      o->wait.complete();
    }
  };

  template <class E, class... A>
    requires Result::has_error
  void store(E&& e, A&&... a) {
    error = std::forward<E>(e);
    values.emplace(std::forward<A>(a)...);
  }
  template <class... A>
    requires(!Result::has_error)
  void store(A&&... a) {
    values.emplace(std::forward<A>(a)...);
  }

  // run(init, redirect, args...) starts the operation and waits for it as use_fiber promises;
  // `redirect` (redirect_error's error_code) receives the error instead of a throw.
  template <class Init, class... InitArgs>
  static Return run(Init&& init, boost::system::error_code* redirect, InitArgs&&... args) {
    require_io_scheduler();
    const StopCondition stop = current_stop();
    if (stop.stop_requested()) throw_cancelled();
    IoOperation op;
    const IoCancel cancel = find_io_object(init, args...);
    std::forward<Init>(init)(Handler(&op), std::forward<InitArgs>(args)...);
    if (!op.wait.wait(stop)) {
      // The handler will write into this frame (and maybe into the caller's buffers): end the
      // operation and wait for its handler before unwinding.
      cancel();
      (void)op.wait.wait(StopCondition{});
      throw_cancelled();
    }
    if (op.abandoned)
      throw boost::system::system_error(
          boost::asio::error::operation_aborted,
          "fiberutils: the operation's handler was destroyed without being called (its "
          "io_context was destroyed or shut down while it was pending)");
    if constexpr (Result::has_error) {
      if constexpr (std::is_same_v<typename Result::error_type, std::exception_ptr>) {
        if (op.error) std::rethrow_exception(op.error);
      } else if (redirect) {
        *redirect = op.error;
      } else if (op.error) {
        throw boost::system::system_error(op.error);
      }
    }
    if constexpr (!std::is_void_v<Return>) {
      if constexpr (std::tuple_size_v<Values> == 1)
        return std::move(std::get<0>(*op.values));
      else
        return std::move(*op.values);
    }
  }
};

template <class Signature>
struct IoOperationFor;
template <class R, class... Args>
struct IoOperationFor<R(Args...)> {
  using type = IoOperation<Args...>;
};

}  // namespace detail
}  // namespace fiberutils

namespace boost::asio {

template <class Signature>
class async_result<fiberutils::use_fiber_t, Signature> {
  using Op = typename fiberutils::detail::IoOperationFor<Signature>::type;

 public:
  using return_type = typename Op::Return;

  template <class Init, class... InitArgs>
  static return_type initiate(Init&& init, fiberutils::use_fiber_t, InitArgs&&... args) {
    return Op::run(std::forward<Init>(init), nullptr, std::forward<InitArgs>(args)...);
  }
};

// redirect_error(fu::use_fiber, ec): the same wait, with the error code stored in ec. More
// specialised than Asio's own redirect_error_t<CompletionToken> specialisation, so the
// operation's own initiation reaches use_fiber (and its IO object can be found for a cancel).
template <class Signature>
class async_result<redirect_error_t<fiberutils::use_fiber_t>, Signature> {
  using Op = typename fiberutils::detail::IoOperationFor<Signature>::type;
  static_assert(Op::Result::has_error, "fiberutils: redirect_error needs an error_code first");

 public:
  using return_type = typename Op::Return;

  template <class Init, class... InitArgs>
  static return_type initiate(Init&& init, redirect_error_t<fiberutils::use_fiber_t> token,
                              InitArgs&&... args) {
    return Op::run(std::forward<Init>(init), &token.ec_, std::forward<InitArgs>(args)...);
  }
};

}  // namespace boost::asio
