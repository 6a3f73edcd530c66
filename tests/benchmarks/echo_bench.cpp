// SPDX-License-Identifier: Apache-2.0
//
// echo_bench: 64-byte echo ping-pong on loopback against three one-thread servers built in the
// same run: fiberutils (a task per connection, fu::use_fiber), a hand-written Asio C++20
// coroutine server (co_spawn, use_awaitable) and a hand-written raw Boost.Fiber + Asio server
// (a fiber per connection, one boost::fibers::promise per operation, a run_one/poll scheduling
// algorithm). Each server is a fresh process of this program pinned to CPU 0; the client is an
// epoll loop pinned to CPU 1 that keeps one 64-byte message in flight per connection.
// All three servers read up to 4 KiB into a buffer of their own (the fiber's stack, the
// coroutine frame) and write back what they read.
//
// Reported per server and C: round trips per second, p50/p99 round-trip latency, server CPU per
// round trip (from /proc/PID/schedstat), the server's peak RSS (VmHWM) and its CPU while idle
// for one second with no connection. Medians of --runs fresh server processes.
//
// usage: echo_bench [--quick] [--runs K] [--conns C1,C2,...] [--seconds S]
//        echo_bench --server fiberutils|coroutine|rawfiber   (prints "ready <port>")
//   --quick  C = 10 and 100, 0.2 s, one run: checks every echo (the echo_bench_quick test)
#include <utility>  // before Asio (FACTS.md)

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
#include <sstream>
#include <string>
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

// ---- server 3: raw Boost.Fiber + Asio, by hand ---------------------------------------------

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

long long cpu_ns(pid_t pid) {  // on-CPU time of every thread of pid, in ns
  std::ifstream f("/proc/" + std::to_string(pid) + "/schedstat");
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

struct Result {
  double rtt_per_s = 0, p50_us = 0, p99_us = 0, cpu_ns_per_rtt = 0, idle_ms_per_s = 0;
  long rss_kib = 0;
  bool ok = true;
};

struct Conn {
  int fd;
  std::size_t sent_at_got = 0;  // bytes of the current echo received
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

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(srv.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  int ep = epoll_create1(0);
  for (int i = 0; i < conns; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
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
    std::memset(msg, c.tag, sizeof msg);
    c.sent = Clock::now();
    c.sent_at_got = 0;
    if (write(c.fd, msg, sizeof msg) != ssize_t(sizeof msg)) res.ok = false;
  };
  for (auto& c : cs) send_one(c);

  std::vector<float> lat;
  lat.reserve(1 << 22);
  long long rtts = 0, cpu0 = 0;
  bool measuring = false;
  const auto t_start = Clock::now();
  const auto warmup = std::chrono::duration<double>(std::min(0.5, seconds));
  const auto t_end_target = std::chrono::duration<double>(seconds) + warmup;
  Clock::time_point t0;
  std::array<epoll_event, 1024> evs;
  for (;;) {
    const auto now = Clock::now();
    if (!measuring && now - t_start >= warmup) {
      measuring = true;
      t0 = now;
      cpu0 = cpu_ns(srv.pid);
    }
    if (now - t_start >= t_end_target) break;
    int k = epoll_wait(ep, evs.data(), int(evs.size()), 100);
    for (int e = 0; e < k; ++e) {
      Conn& c = cs[evs[std::size_t(e)].data.u32];
      unsigned char buf[kMessage];
      ssize_t r = read(c.fd, buf, kMessage - c.sent_at_got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        res.ok = false;  // the server closed or failed
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      for (ssize_t j = 0; j < r; ++j)
        if (buf[j] != c.tag) res.ok = false;
      c.sent_at_got += std::size_t(r);
      if (c.sent_at_got < kMessage) continue;
      if (measuring) {
        ++rtts;
        lat.push_back(std::chrono::duration<float, std::micro>(Clock::now() - c.sent).count());
      }
      send_one(c);
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const long long cpu = cpu_ns(srv.pid) - cpu0;
  res.rss_kib = peak_rss_kib(srv.pid);
  if (rtts == 0) res.ok = false;
  res.rtt_per_s = double(rtts) / secs;
  res.cpu_ns_per_rtt = rtts ? double(cpu) / double(rtts) : 0;
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
  kill(srv.pid, SIGTERM);
  int status = 0;
  waitpid(srv.pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "echo_bench: server %s exited with status %d\n", kind.c_str(), status);
    res.ok = false;
  }
  return res;
}

Result median(std::vector<Result> v) {
  auto mid = [&](auto field) {
    std::vector<double> x;
    for (auto& r : v) x.push_back(double(r.*field));
    std::sort(x.begin(), x.end());
    return x[x.size() / 2];
  };
  Result m;
  m.rtt_per_s = mid(&Result::rtt_per_s);
  m.p50_us = mid(&Result::p50_us);
  m.p99_us = mid(&Result::p99_us);
  m.cpu_ns_per_rtt = mid(&Result::cpu_ns_per_rtt);
  m.idle_ms_per_s = mid(&Result::idle_ms_per_s);
  m.rss_kib = long(mid(&Result::rss_kib));
  m.ok = std::all_of(v.begin(), v.end(), [](const Result& r) { return r.ok; });
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--server") == 0) {
    pin_to_cpu(0);
    raise_fd_limit();
    const std::string kind = argv[2];
    if (kind == "fiberutils") return fiberutils_server();
    if (kind == "coroutine") return coroutine_server();
    if (kind == "rawfiber") return rawfiber_server();
    return 2;
  }
  bool quick = false;
  int runs = 3;
  double seconds = 2.0;
  std::vector<int> conns = {100, 1000, 10000};
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
    } else {
      std::fprintf(stderr, "usage: echo_bench [--quick] [--runs K] [--conns C1,C2] [--seconds S]\n");
      return 2;
    }
  }
  if (quick) {
    runs = 1;
    seconds = 0.2;
    conns = {10, 100};
  }
  pin_to_cpu(1);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  const std::vector<std::string> kinds = {"fiberutils", "coroutine", "rawfiber"};
  std::printf("64-byte echo ping-pong on loopback, server pinned to CPU 0, epoll client on CPU 1;"
              " %.1f s per run after 0.5 s warm-up, median of %d fresh server processes\n\n",
              seconds, runs);
  std::printf("| server | C | round trips/s | p50 | p99 | server CPU per round trip | peak RSS | "
              "idle CPU | vs coroutine |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bool ok = true;
  for (int c : conns) {
    double coro_rate = 0;
    std::vector<std::pair<std::string, Result>> rows;
    for (const auto& kind : kinds) {
      std::vector<Result> rs;
      for (int r = 0; r < runs; ++r) rs.push_back(measure(argv[0], kind, c, seconds));
      Result m = median(rs);
      ok = ok && m.ok;
      if (kind == "coroutine") coro_rate = m.rtt_per_s;
      rows.emplace_back(kind, m);
    }
    for (auto& [kind, m] : rows)
      std::printf("| %s | %d | %.0f/s | %.0f us | %.0f us | %.0f ns | %.1f MiB | %.2f ms/s | %.2fx |%s\n",
                  kind.c_str(), c, m.rtt_per_s, m.p50_us, m.p99_us, m.cpu_ns_per_rtt,
                  double(m.rss_kib) / 1024.0, m.idle_ms_per_s,
                  coro_rate > 0 ? m.rtt_per_s / coro_rate : 0.0, m.ok ? "" : " FAILED");
    std::fflush(stdout);
  }
  if (!ok) std::printf("\nsome run failed: wrong echo, closed connection or bad exit status\n");
  return ok ? 0 : 1;
}
