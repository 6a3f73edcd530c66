// SPDX-License-Identifier: Apache-2.0
//
// echo_server <port>: a TCP echo server on 127.0.0.1:<port> (0: any free port), one thread, a
// task per connection. It prints "ready <port>" as its first line once listening, echoes what it
// reads (reads of up to 4 KiB, written back whole, TCP_NODELAY on), holds up to 100,000
// connections at once (as many as the descriptor limit, raised to its hard limit, allows), and
// on SIGINT or SIGTERM closes every connection and exits 0.
//
// The code reads like blocking socket calls: each async_* call with fu::use_fiber suspends only
// its own task, and the one thread serves every connection meanwhile.
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fiberutils/asio.hpp>
#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
namespace net = boost::asio;
using net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::ptrdiff_t kMaxConnections = 100'000;

// [echo_session]
// One connection: read what came, write it all back, until the client closes. A cancel (the
// shutdown) ends the pending read; the socket closes when the task's frame unwinds.
void echo(tcp::socket s) {
  std::array<char, 4096> buf;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = s.async_read_some(net::buffer(buf), net::redirect_error(fu::use_fiber, ec));
    if (ec) return;  // eof, or a reset: the client is gone
    net::async_write(s, net::buffer(buf, n), net::redirect_error(fu::use_fiber, ec));
    if (ec) return;
  }
}
// [echo_session]

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: echo_server <port>\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "echo_server: bad port %s\n", argv[1]);
    return 2;
  }
  // Every connection is a descriptor: use all the kernel lets this process have.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }

  // [echo_server]
  net::io_context io;
  fu::IoScheduler sched(io);  // this thread now runs io's handlers between its tasks
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(),
                                           static_cast<unsigned short>(port)));
  acceptor.listen(net::socket_base::max_listen_connections);
  std::printf("ready %u\n", unsigned(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  fu::Group connections;
  fu::Semaphore free_slots(kMaxConnections);  // the connection limit
  fu::Group server;
  server.spawn([&] {  // shutdown: a signal cancels the accept loop and every connection
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait(fu::use_fiber);
    server.cancel();
    connections.cancel();
  });
  server.spawn([&] {
    for (;;) {
      free_slots.acquire();  // at the limit, stop accepting until a connection ends
      tcp::socket s(io);
      boost::system::error_code ec;
      acceptor.async_accept(s, net::redirect_error(fu::use_fiber, ec));
      if (ec) {  // out of descriptors, say: give connections time to end, then go on
        free_slots.release();
        fu::this_task::sleep_for(10ms);
        continue;
      }
      s.set_option(tcp::no_delay(true));
      connections.spawn([&free_slots, s = std::move(s)]() mutable {
        struct Slot {
          fu::Semaphore& free;
          ~Slot() { free.release(); }
        } slot{free_slots};
        echo(std::move(s));
      });
    }
  });
  server.join();       // returns once a signal cancelled it
  connections.join();  // every connection closed
  // [echo_server]
  return 0;
}
