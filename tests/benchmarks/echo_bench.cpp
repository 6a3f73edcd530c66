// SPDX-License-Identifier: Apache-2.0
//
// echo_bench: 64-byte echo ping-pong on loopback against four one-thread servers built in the
// same run: fiberutils (a task per connection, fu::use_fiber), a hand-written Asio C++20
// coroutine server (co_spawn, use_awaitable), the Asio 1.74 callback server (the shape of Asio's
// async_tcp_echo_server example: a session object per connection, shared_from_this; the issue's
// ceiling for Asio on one core) and a hand-written raw Boost.Fiber + Asio server (a fiber per
// connection, one boost::fibers::promise per operation, a run_one/poll scheduling algorithm).
// Each server is a fresh process of this program pinned to CPU 0; the client is an epoll loop
// pinned to CPU 1 that keeps one 64-byte message in flight per connection. The placement is the
// same for every server (on the 2-vCPU VM the README's figures come from, CPU 0 takes the
// interrupts and runs tight loops about 1.5x slower than CPU 1).
// All four servers read up to 4 KiB into a buffer of their own (the fiber's stack, the
// coroutine frame, the session object) and write back what they read.
//
// Reported per server and C: round trips per second, p50/p99 round-trip latency, server CPU per
// round trip (from /proc/PID/schedstat), the server's peak RSS (VmHWM), its CPU while idle for
// one second with no connection, and the client's CPU share (near 100%: the client bounds the
// figure, not the server). Medians of --runs fresh server processes, the servers taking turns.
//
// Connect storm (--storm C, default 1,000): C connections are opening at every moment. Each is a
// non-blocking connect, one 64-byte echo round trip once it is writable, then close() by the
// client, and a new connect in its place. A connection counts once its echo is back, so each one
// costs the server an accept, a read, a write and (for the previous ones) a close; the kernel
// alone completes handshakes from the listen backlog, so connects without an echo would not
// measure the server. Reported: connections per second and server CPU per connection.
//
// usage: echo_bench [--quick] [--runs K] [--conns C1,C2,...] [--seconds S] [--storm C]
//                   [--servers fiberutils,coroutine,callback,rawfiber]   (default: all four)
//        echo_bench --server fiberutils|coroutine|callback|rawfiber   (prints "ready <port>")
//   --quick  C = 10 and 100, a storm of 100, 0.2 s, one run: checks every echo of every server
//            (the echo_bench_quick test)
#include <utility>  // before Asio (FACTS.md)

// Asio 1.74 enables co_await under clang only with <experimental/coroutine>, which clang 19 with
// libstdc++ 12 does not have; its C++20 <coroutine> support works, so the coroutine server
// builds with clang too.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/asio.hpp>
#include <boost/fiber/all.hpp>

#include <fiberutils/asio.hpp>
#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
namespace net = boost::asio;
using net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMessage = 64;
constexpr std::size_t kBuffer = 4096;

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);  // best effort: a 1-CPU machine still runs
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

tcp::acceptor make_acceptor(net::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  a.listen(net::socket_base::max_listen_connections);
  std::printf("ready %u\n", unsigned(a.local_endpoint().port()));
  std::fflush(stdout);
  return a;
}

// ---- server 1: fiberutils ------------------------------------------------------------------

int fiberutils_server() {
  net::io_context io;
  fu::IoScheduler sched(io);
  tcp::acceptor acceptor = make_acceptor(io);
  fu::Group server, connections;
  server.spawn([&] {
    net::signal_set signals(io, SIGTERM);
    signals.async_wait(fu::use_fiber);
    server.cancel();
    connections.cancel();
  });
  server.spawn([&] {
    for (;;) {
      tcp::socket s(io);
      boost::system::error_code ec;
      acceptor.async_accept(s, net::redirect_error(fu::use_fiber, ec));
      if (ec) continue;
      s.set_option(tcp::no_delay(true));
      connections.spawn([s = std::move(s)]() mutable {
        std::array<char, kBuffer> buf;
        for (;;) {
          boost::system::error_code ec;
          std::size_t n = s.async_read_some(net::buffer(buf), net::redirect_error(fu::use_fiber, ec));
          if (ec) return;
          net::async_write(s, net::buffer(buf, n), net::redirect_error(fu::use_fiber, ec));
          if (ec) return;
        }
      });
    }
  });
  server.join();
  connections.join();
  return 0;
}

// ---- server 2: Asio C++20 coroutines -------------------------------------------------------

// [coro_session]
net::awaitable<void> coro_session(tcp::socket s) {
  char buf[kBuffer];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(net::buffer(buf), net::use_awaitable);
      co_await net::async_write(s, net::buffer(buf, n), net::use_awaitable);
    }
  } catch (const std::exception&) {
  }
}
// [coro_session]

net::awaitable<void> coro_listener(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket s = co_await acceptor.async_accept(net::use_awaitable);
    s.set_option(tcp::no_delay(true));
    net::co_spawn(acceptor.get_executor(), coro_session(std::move(s)), net::detached);
  }
}

int coroutine_server() {
  net::io_context io(1);
  tcp::acceptor acceptor = make_acceptor(io);
  net::signal_set signals(io, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  net::co_spawn(io, coro_listener(acceptor), net::detached);
  io.run();
  return 0;
}

// ---- server 3: Asio 1.74 callbacks ---------------------------------------------------------

// The shape of Asio's async_tcp_echo_server example: a session object per connection, kept alive
// by the shared_ptr each pending handler holds. The buffer is kBuffer, not the example's 1 KiB, so
// every server reads alike.
class CallbackSession : public std::enable_shared_from_this<CallbackSession> {
 public:
  explicit CallbackSession(tcp::socket s) : socket_(std::move(s)) {}
  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(net::buffer(buf_),
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }
  void write(std::size_t n) {
    net::async_write(socket_, net::buffer(buf_, n),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       if (!ec) self->read();
                     });
  }

  tcp::socket socket_;
  std::array<char, kBuffer> buf_;
};

void callback_accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      s.set_option(tcp::no_delay(true));
      std::make_shared<CallbackSession>(std::move(s))->start();
    }
    callback_accept(acceptor);
  });
}

int callback_server() {
  net::io_context io(1);
  tcp::acceptor acceptor = make_acceptor(io);
  net::signal_set signals(io, SIGTERM);
  signals.async_wait([&](auto, auto) { io.stop(); });
  callback_accept(acceptor);
  io.run();
  return 0;
}

// ---- server 4: raw Boost.Fiber + Asio, by hand ---------------------------------------------

// The scheduling algorithm FACTS.md describes: round-robin ready queue, run_one()/
// run_one_until() then poll() when no fiber is ready, notify() posts a no-op.
class RawAsioAlgorithm final : public boost::fibers::algo::algorithm {
 public:
  explicit RawAsioAlgorithm(net::io_context& io) : io_(io), work_(io.get_executor()) {}
  void awakened(boost::fibers::context* ctx) noexcept override { ctx->ready_link(ready_); }
  boost::fibers::context* pick_next() noexcept override {
    if (ready_.empty()) return nullptr;
    boost::fibers::context* c = &ready_.front();
    ready_.pop_front();
    return c;
  }
  bool has_ready_fibers() const noexcept override { return !ready_.empty(); }
  void suspend_until(const Clock::time_point& tp) noexcept override {
    if (tp == Clock::time_point::max())
      io_.run_one();
    else
      io_.run_one_until(tp);
    io_.poll();
  }
  void notify() noexcept override { net::post(io_, [] {}); }

 private:
  net::io_context& io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  boost::fibers::scheduler::ready_queue_type ready_;
};

// One promise per operation, the handler fulfils it, the fiber waits on its future.
struct RawResult {
  boost::system::error_code ec;
  std::size_t n = 0;
};
auto raw_handler(boost::fibers::promise<RawResult>& p) {
  return [&p](boost::system::error_code ec, std::size_t n = 0) { p.set_value({ec, n}); };
}

int rawfiber_server() {
  net::io_context io;
  boost::fibers::use_scheduling_algorithm<RawAsioAlgorithm>(io);
  tcp::acceptor acceptor = make_acceptor(io);
  bool stop = false;
  net::signal_set signals(io, SIGTERM);
  signals.async_wait([&](auto, auto) {
    stop = true;
    acceptor.close();
  });
  for (;;) {
    tcp::socket s(io);
    boost::fibers::promise<RawResult> p;
    acceptor.async_accept(s, [&p](boost::system::error_code ec) { p.set_value({ec, 0}); });
    RawResult r = p.get_future().get();
    if (stop) break;
    if (r.ec) continue;
    s.set_option(tcp::no_delay(true));
    boost::fibers::fiber([s = std::move(s)]() mutable {
      std::array<char, kBuffer> buf;
      for (;;) {
        boost::fibers::promise<RawResult> pr;
        s.async_read_some(net::buffer(buf), raw_handler(pr));
        RawResult r = pr.get_future().get();
        if (r.ec) return;
        boost::fibers::promise<RawResult> pw;
        net::async_write(s, net::buffer(buf, r.n), raw_handler(pw));
        if (pw.get_future().get().ec) return;
      }
    }).detach();
  }
  std::_Exit(0);  // detached connection fibers: the process ends with them
}

// ---- the client and the measurement --------------------------------------------------------

struct Server {
  pid_t pid = -1;
  int port = 0;
};

Server start_server(const char* self, const std::string& kind) {
  int out[2];
  if (pipe(out) != 0) std::exit(3);
  Server s;
  s.pid = fork();
  if (s.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    execl(self, self, "--server", kind.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  close(out[1]);
  char line[64] = {};
  std::size_t got = 0;
  while (got < sizeof line - 1) {
    ssize_t r = read(out[0], line + got, 1);
    if (r <= 0 || line[got] == '\n') break;
    ++got;
  }
  close(out[0]);
  if (std::sscanf(line, "ready %d", &s.port) != 1) {
    std::fprintf(stderr, "echo_bench: server %s did not start\n", kind.c_str());
    std::exit(3);
  }
  return s;
}

// stop_server(srv, kind) ends the server with SIGTERM; false unless it exited 0.
bool stop_server(const Server& srv, const std::string& kind) {
  kill(srv.pid, SIGTERM);
  int status = 0;
  waitpid(srv.pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::fprintf(stderr, "echo_bench: server %s exited with status %d\n", kind.c_str(), status);
  return false;
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

long long cpu_ns(pid_t pid) {  // on-CPU time of every thread of pid (0: this process), in ns
  std::ifstream f(pid ? "/proc/" + std::to_string(pid) + "/schedstat"
                      : std::string("/proc/self/schedstat"));
  long long ns = 0;
  f >> ns;
  return ns;
}

long peak_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

// The time of one run: a warm-up (not counted: the server's first connections and its caches),
// then `seconds` measured, with the server's and the client's CPU read at the measured window's
// ends. The client's share tells whether the client, not the server, bounds a figure.
class Window {
 public:
  Window(pid_t server, double seconds)
      : server_(server),
        start_(Clock::now()),
        warmup_(std::min(0.5, seconds)),
        end_(std::chrono::duration<double>(seconds) + warmup_) {}

  // running() is false once the window has passed; measuring() from the warm-up's end on.
  bool running() {
    const auto now = Clock::now();
    if (!measuring_ && now - start_ >= warmup_) {
      measuring_ = true;
      t0_ = now;
      server_cpu0_ = cpu_ns(server_);
      client_cpu0_ = cpu_ns(0);
    }
    return now - start_ < end_;
  }
  bool measuring() const { return measuring_; }

  struct Measured {
    double seconds, server_cpu_ns, client_busy;
  };
  Measured finish() const {
    const double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
    return {secs, double(cpu_ns(server_) - server_cpu0_),
            double(cpu_ns(0) - client_cpu0_) / (secs * 1e9)};
  }

 private:
  pid_t server_;
  Clock::time_point start_, t0_;
  std::chrono::duration<double> warmup_, end_;
  bool measuring_ = false;
  long long server_cpu0_ = 0, client_cpu0_ = 0;
};

struct Result {
  double rtt_per_s = 0, p50_us = 0, p99_us = 0, cpu_ns_per_rtt = 0, idle_ms_per_s = 0,
         client_busy = 0;
  long rss_kib = 0;
  bool ok = true;
};

// Every message of a connection is 64 copies of its tag, so a mixed-up echo shows.
void fill_message(unsigned char (&msg)[kMessage], unsigned char tag) {
  std::memset(msg, tag, sizeof msg);
}

// Reads what is there of the echo of a 64-byte message into *got; false on EOF, an error or a
// wrong byte. Done when *got == kMessage.
bool read_echo(int fd, unsigned char tag, std::size_t* got) {
  unsigned char buf[kMessage];
  ssize_t r = read(fd, buf, kMessage - *got);
  if (r < 0 && errno == EAGAIN) return true;
  if (r <= 0) return false;
  for (ssize_t j = 0; j < r; ++j)
    if (buf[j] != tag) return false;
  *got += std::size_t(r);
  return true;
}

struct Conn {
  int fd;
  std::size_t got = 0;  // bytes of the current echo received
  Clock::time_point sent;
  unsigned char tag;
};

Result measure(const char* self, const std::string& kind, int conns, double seconds) {
  Result res;
  Server srv = start_server(self, kind);
  // Idle: a second with the server listening and nothing else, after 0.2 s in which it starts
  // its tasks (counted otherwise: the servers print "ready" before they start accepting).
  usleep(200'000);
  const long long idle0 = cpu_ns(srv.pid);
  usleep(1'000'000);
  res.idle_ms_per_s = double(cpu_ns(srv.pid) - idle0) / 1e6;

  const sockaddr_in addr = loopback(srv.port);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  int ep = epoll_create1(0);
  for (int i = 0; i < conns; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "echo_bench: connect %d failed: %s\n", i, std::strerror(errno));
      res.ok = false;
      if (fd >= 0) close(fd);
      cs.resize(static_cast<std::size_t>(i));
      break;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    cs[std::size_t(i)] = Conn{fd, 0, {}, static_cast<unsigned char>(i)};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  auto send_one = [&](Conn& c) {
    unsigned char msg[kMessage];
    fill_message(msg, c.tag);
    c.sent = Clock::now();
    c.got = 0;
    if (write(c.fd, msg, sizeof msg) != ssize_t(sizeof msg)) res.ok = false;
  };
  for (auto& c : cs) send_one(c);

  std::vector<float> lat;
  lat.reserve(1 << 22);
  long long rtts = 0;
  Window window(srv.pid, seconds);
  std::array<epoll_event, 1024> evs;
  while (window.running()) {
    int k = epoll_wait(ep, evs.data(), int(evs.size()), 100);
    for (int e = 0; e < k; ++e) {
      Conn& c = cs[evs[std::size_t(e)].data.u32];
      if (!read_echo(c.fd, c.tag, &c.got)) {
        res.ok = false;  // the server closed, failed or echoed something else
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      if (c.got < kMessage) continue;
      if (window.measuring()) {
        ++rtts;
        lat.push_back(std::chrono::duration<float, std::micro>(Clock::now() - c.sent).count());
      }
      send_one(c);
    }
  }
  const Window::Measured m = window.finish();
  res.rss_kib = peak_rss_kib(srv.pid);
  res.client_busy = m.client_busy;
  if (rtts == 0) res.ok = false;
  res.rtt_per_s = double(rtts) / m.seconds;
  res.cpu_ns_per_rtt = rtts ? m.server_cpu_ns / double(rtts) : 0;
  if (!lat.empty()) {
    auto at = [&](double q) {
      auto it = lat.begin() + std::ptrdiff_t(q * double(lat.size() - 1));
      std::nth_element(lat.begin(), it, lat.end());
      return double(*it);
    };
    res.p50_us = at(0.50);
    res.p99_us = at(0.99);
  }
  for (auto& c : cs) close(c.fd);
  close(ep);
  if (!stop_server(srv, kind)) res.ok = false;
  return res;
}

struct StormResult {
  double connects_per_s = 0, cpu_us_per_connect = 0, client_busy = 0;
  bool ok = true;
};

// The connect storm: `inflight` connections are opening at every moment. Each is a non-blocking
// connect; once it is writable, one 64-byte message; once its whole echo is back, close() (the
// client closes first, as a load generator's short request does) and a new connect in its
// place. A connection counts when its echo is back, so each one needs the server's accept, a
// read and a write: the handshake alone is completed by the kernel from the listen backlog
// without the server. Reported: such connections per second, and server CPU per connection
// (which includes closing the previous ones).
StormResult connect_storm(const char* self, const std::string& kind, int inflight, double seconds) {
  StormResult res;
  Server srv = start_server(self, kind);
  usleep(200'000);  // the server starts accepting (see measure)
  const sockaddr_in addr = loopback(srv.port);
  struct Slot {
    int fd = -1;
    bool sent = false;
    std::size_t got = 0;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(inflight));
  int ep = epoll_create1(0);
  auto open_slot = [&](uint32_t i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
                   errno != EINPROGRESS)) {
      std::fprintf(stderr, "echo_bench: connect failed: %s\n", std::strerror(errno));
      res.ok = false;
      if (fd >= 0) close(fd);
      slots[i] = Slot{};
      return;
    }
    slots[i] = Slot{fd, false, 0};
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  };
  for (uint32_t i = 0; i < slots.size(); ++i) open_slot(i);

  long long done = 0;
  Window window(srv.pid, seconds);
  std::array<epoll_event, 1024> evs;
  while (window.running()) {
    int k = epoll_wait(ep, evs.data(), int(evs.size()), 100);
    for (int e = 0; e < k; ++e) {
      const uint32_t i = evs[std::size_t(e)].data.u32;
      Slot& s = slots[i];
      const auto tag = static_cast<unsigned char>(i);
      bool ok;
      if (!s.sent) {
        unsigned char msg[kMessage];
        fill_message(msg, tag);
        ok = !(evs[std::size_t(e)].events & EPOLLERR) &&
             write(s.fd, msg, sizeof msg) == ssize_t(sizeof msg);
        s.sent = true;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
        if (ok) continue;
      } else {
        ok = read_echo(s.fd, tag, &s.got);
        if (ok && s.got < kMessage) continue;
        if (ok && window.measuring()) ++done;
      }
      if (!ok) {
        std::fprintf(stderr, "echo_bench: a storm connection failed or echoed wrong bytes\n");
        res.ok = false;
      }
      close(s.fd);
      open_slot(i);
    }
  }
  const Window::Measured m = window.finish();
  res.client_busy = m.client_busy;
  if (done == 0) res.ok = false;
  res.connects_per_s = double(done) / m.seconds;
  res.cpu_us_per_connect = done ? m.server_cpu_ns / 1e3 / double(done) : 0;
  for (auto& s : slots)
    if (s.fd >= 0) close(s.fd);
  close(ep);
  if (!stop_server(srv, kind)) res.ok = false;
  return res;
}

// The median of each field on its own (so a row may mix runs), over the fields given.
template <class R, class... Fields>
R median(const std::vector<R>& v, Fields... fields) {
  R m;
  auto mid = [&](auto field) {
    std::vector<double> x;
    for (auto& r : v) x.push_back(double(r.*field));
    std::sort(x.begin(), x.end());
    using T = std::remove_reference_t<decltype(m.*field)>;
    m.*field = static_cast<T>(x[x.size() / 2]);
  };
  (mid(fields), ...);
  m.ok = std::all_of(v.begin(), v.end(), [](const R& r) { return r.ok; });
  return m;
}

// runs runs of each server, the servers taking turns (run 1 of each, then run 2 of each, ...):
// the machine's other load changes over a minute, and taking turns spreads it over every server
// alike instead of onto whichever ran during a busy spell. Result [k][r]: server kinds[k], run r.
template <class Measure>
auto interleaved(const std::vector<std::string>& kinds, int runs, Measure measure_one) {
  std::vector<std::vector<decltype(measure_one(kinds[0]))>> all(kinds.size());
  for (int r = 0; r < runs; ++r)
    for (std::size_t k = 0; k < kinds.size(); ++k) all[k].push_back(measure_one(kinds[k]));
  return all;
}

// The rate of server `kind` among rows, 0 when it was not run (its ratio column then shows 0).
template <class R>
double rate_of(const std::vector<std::pair<std::string, R>>& rows, const std::string& kind,
               double R::*rate) {
  for (auto& [k, r] : rows)
    if (k == kind) return r.*rate;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--server") == 0) {
    pin_to_cpu(0);
    raise_fd_limit();
    const std::string kind = argv[2];
    if (kind == "fiberutils") return fiberutils_server();
    if (kind == "coroutine") return coroutine_server();
    if (kind == "callback") return callback_server();
    if (kind == "rawfiber") return rawfiber_server();
    return 2;
  }
  bool quick = false;
  int runs = 3;
  double seconds = 2.0;
  std::vector<int> conns = {100, 1000, 10000};
  int storm = 1000;
  std::vector<std::string> kinds = {"fiberutils", "coroutine", "callback", "rawfiber"};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--conns") == 0 && i + 1 < argc) {
      conns.clear();
      std::stringstream ss(argv[++i]);
      for (std::string c; std::getline(ss, c, ',');) conns.push_back(std::atoi(c.c_str()));
    } else if (std::strcmp(argv[i], "--servers") == 0 && i + 1 < argc) {
      kinds.clear();
      std::stringstream ss(argv[++i]);
      for (std::string k; std::getline(ss, k, ',');) kinds.push_back(k);
    } else if (std::strcmp(argv[i], "--storm") == 0 && i + 1 < argc) {
      storm = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: echo_bench [--quick] [--runs K] [--conns C1,C2] [--seconds S]"
                           " [--storm C]\n"
                           "                  [--servers fiberutils,coroutine,callback,rawfiber]\n");
      return 2;
    }
  }
  if (quick) {
    runs = 1;
    seconds = 0.2;
    conns = {10, 100};
    storm = 100;
  }
  pin_to_cpu(1);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  std::printf("64-byte echo ping-pong on loopback, server pinned to CPU 0, epoll client on CPU 1;"
              " %.1f s per run after 0.5 s warm-up, median of %d fresh server processes, servers taking turns\n\n",
              seconds, runs);
  std::printf("| server | C | round trips/s | p50 | p99 | server CPU per round trip | peak RSS | "
              "idle CPU | client CPU | vs coroutine | vs callback |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bool ok = true;
  auto ratio = [](double x, double base) { return base > 0 ? x / base : 0.0; };
  for (int c : conns) {
    std::vector<std::pair<std::string, Result>> rows;
    const auto all = interleaved(kinds, runs, [&](const std::string& kind) {
      return measure(argv[0], kind, c, seconds);
    });
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const std::string& kind = kinds[k];
      Result m = median(all[k], &Result::rtt_per_s, &Result::p50_us, &Result::p99_us,
                        &Result::cpu_ns_per_rtt, &Result::idle_ms_per_s, &Result::client_busy,
                        &Result::rss_kib);
      ok = ok && m.ok;
      rows.emplace_back(kind, m);
    }
    const double coro = rate_of(rows, "coroutine", &Result::rtt_per_s),
                 callback = rate_of(rows, "callback", &Result::rtt_per_s);
    for (auto& [kind, m] : rows)
      std::printf("| %s | %d | %.0f/s | %.0f us | %.0f us | %.0f ns | %.1f MiB | %.2f ms/s | "
                  "%.0f%% | %.2fx | %.2fx |%s\n",
                  kind.c_str(), c, m.rtt_per_s, m.p50_us, m.p99_us, m.cpu_ns_per_rtt,
                  double(m.rss_kib) / 1024.0, m.idle_ms_per_s, m.client_busy * 100,
                  ratio(m.rtt_per_s, coro), ratio(m.rtt_per_s, callback), m.ok ? "" : " FAILED");
    std::fflush(stdout);
  }
  if (storm > 0) {
    std::printf("\nConnect storm: %d connections opening at every moment, each connect + one"
                " 64-byte echo + close, then the next\n\n"
                "| server | connects/s | server CPU per connection | client CPU | vs coroutine |"
                " vs callback |\n|---|---:|---:|---:|---:|---:|\n",
                storm);
    std::vector<std::pair<std::string, StormResult>> rows;
    const auto all = interleaved(kinds, runs, [&](const std::string& kind) {
      return connect_storm(argv[0], kind, storm, seconds);
    });
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      const std::string& kind = kinds[k];
      StormResult m = median(all[k], &StormResult::connects_per_s, &StormResult::cpu_us_per_connect,
                             &StormResult::client_busy);
      ok = ok && m.ok;
      rows.emplace_back(kind, m);
    }
    const double coro = rate_of(rows, "coroutine", &StormResult::connects_per_s),
                 callback = rate_of(rows, "callback", &StormResult::connects_per_s);
    for (auto& [kind, m] : rows)
      std::printf("| %s | %.0f/s | %.1f us | %.0f%% | %.2fx | %.2fx |%s\n", kind.c_str(),
                  m.connects_per_s, m.cpu_us_per_connect, m.client_busy * 100,
                  ratio(m.connects_per_s, coro), ratio(m.connects_per_s, callback),
                  m.ok ? "" : " FAILED");
  }
  if (!ok) std::printf("\nsome run failed: wrong echo, closed connection or bad exit status\n");
  return ok ? 0 : 1;
}
