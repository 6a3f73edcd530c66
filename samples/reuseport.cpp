// SPDX-License-Identifier: Apache-2.0
//
// reuseport: scale an IO server out over threads. Each thread has its own io_context and
// fu::IoScheduler and its own acceptor on the same port (SO_REUSEPORT), so the kernel spreads the
// connections over the threads and nothing is shared between them. Clients on the main thread
// open 200 connections and each learns from its echo which thread served it.
#include <utility>  // before Asio (FACTS.md)

#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fiberutils/asio.hpp>
#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
namespace net = boost::asio;
using net::ip::tcp;
using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

constexpr int kThreads = 2;
constexpr int kConnections = 200;

// [reuseport]
// One server thread: its own io_context, IoScheduler and acceptor, all bound to `port`. Its tasks
// are in `g`, which main cancels from its own thread to stop the server.
void server_thread(int index, unsigned short port, fu::Group& g, std::atomic<int>& listening) {
  net::io_context io;
  fu::IoScheduler sched(io);
  tcp::acceptor acceptor(io);
  const tcp::endpoint ep(net::ip::address_v4::loopback(), port);
  acceptor.open(ep.protocol());
  acceptor.set_option(reuse_port(true));
  acceptor.bind(ep);
  acceptor.listen();
  g.spawn([&] {
    for (;;) {
      tcp::socket s(io);
      acceptor.async_accept(s, fu::use_fiber);  // a cancellation point
      g.spawn([index, s = std::move(s)]() mutable {
        const std::string who = std::to_string(index);  // answers with its thread's index
        net::async_write(s, net::buffer(who), fu::use_fiber);
      });
    }
  });
  ++listening;
  g.join();  // until main's cancel()
}
// [reuseport]

}  // namespace

int main() {
  // Pick a free port: bind one SO_REUSEPORT socket to port 0 and keep it (not listening) until
  // the servers have bound, so no other program takes the port meanwhile.
  net::io_context io;
  tcp::acceptor probe(io);
  probe.open(tcp::v4());
  probe.set_option(reuse_port(true));
  probe.bind(tcp::endpoint(net::ip::address_v4::loopback(), 0));
  const unsigned short port = probe.local_endpoint().port();

  std::atomic<int> listening{0};
  fu::Group servers[kThreads];  // thread-safe: each thread's tasks run on that thread
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back(server_thread, i, port, std::ref(servers[i]), std::ref(listening));
  while (listening < kThreads) std::this_thread::yield();  // a plain wait for plain threads
  probe.close();

  fu::IoScheduler sched(io);
  std::vector<int> per_thread(kThreads, 0);
  fu::Group clients;
  for (int c = 0; c < kConnections; ++c)
    clients.spawn([&] {
      tcp::socket s(io);
      s.async_connect(tcp::endpoint(net::ip::address_v4::loopback(), port), fu::use_fiber);
      char who = 0;
      net::async_read(s, net::buffer(&who, 1), fu::use_fiber);
      ++per_thread[std::size_t(who - '0')];
    });
  clients.join();

  for (auto& g : servers) g.cancel();  // reaches each thread's task waiting in accept
  for (auto& t : threads) t.join();

  int total = 0;
  for (int i = 0; i < kThreads; ++i) {
    std::printf("thread %d served %d connections\n", i, per_thread[std::size_t(i)]);
    total += per_thread[std::size_t(i)];
  }
  return total == kConnections ? 0 : 1;
}
