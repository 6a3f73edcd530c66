// SPDX-License-Identifier: Apache-2.0
//
// http_fetch: a small Boost.Beast HTTP server and client in one program, on loopback. The client
// fetches 100 URLs through a fu::Yielder<Response>(8), at most 8 at a time, and prints each
// status and body size in the order they complete; then it fetches them again one by one and
// compares the wall times. The server answers each request after 20 ms (a stand-in for a slow
// backend), so 8 at a time should take about an eighth of the time.
//
// Every call below that does IO is a Beast or Asio async_* call with fu::use_fiber: it suspends
// its own task only, and the server's and the client's tasks share the one thread.
#include <utility>  // before Asio (FACTS.md)

#include <chrono>
#include <cstdio>
#include <string>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fiberutils/asio.hpp>
#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
namespace net = boost::asio;
namespace http = boost::beast::http;
using net::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct Response {
  int id;
  unsigned status;
  std::size_t size;
};

// The server's answer to one connection: /item/N is N * 10 bytes of text, anything else 404.
void serve(tcp::socket s, net::io_context& io) {
  boost::beast::flat_buffer buf;
  http::request<http::string_body> req;
  http::async_read(s, buf, req, fu::use_fiber);
  net::steady_timer slow_backend(io, 20ms);
  slow_backend.async_wait(fu::use_fiber);
  http::response<http::string_body> res;
  res.version(req.version());
  res.set(http::field::connection, "close");
  const std::string target(req.target());
  if (target.rfind("/item/", 0) == 0) {
    res.result(http::status::ok);
    res.body() = std::string(std::size_t(std::stoi(target.substr(6))) * 10, 'x');
  } else {
    res.result(http::status::not_found);
  }
  res.prepare_payload();
  http::async_write(s, res, fu::use_fiber);
  boost::system::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
}

// [http_fetch]
// One GET on a connection of its own; suspends only the calling task.
Response fetch(net::io_context& io, const tcp::endpoint& server, int id) {
  tcp::socket s(io);
  s.async_connect(server, fu::use_fiber);
  const std::string target = id % 10 == 9 ? "/missing" : "/item/" + std::to_string(id);
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, "127.0.0.1");
  http::async_write(s, req, fu::use_fiber);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::async_read(s, buf, res, fu::use_fiber);
  return {id, res.result_int(), res.body().size()};
}
// [http_fetch]

}  // namespace

int main() {
  net::io_context io;
  fu::IoScheduler sched(io);
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  acceptor.listen();
  const tcp::endpoint server = acceptor.local_endpoint();

  fu::Group server_tasks;
  server_tasks.spawn([&] {
    for (;;) {
      tcp::socket s(io);
      acceptor.async_accept(s, fu::use_fiber);  // ends by fu::cancelled at the end of main
      server_tasks.spawn([&io, s = std::move(s)]() mutable { serve(std::move(s), io); });
    }
  });

  constexpr int kUrls = 100;
  int bad = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    // [yielder]
    fu::Yielder<Response> responses(8);  // at most 8 fetches at once
    for (int id = 0; id < kUrls; ++id) responses.spawn(fetch, std::ref(io), server, id);
    int n = 0;
    for (const Response& r : responses) {  // in completion order
      std::printf("%3d: GET %-10s -> %u, %zu bytes\n", ++n,
                  (r.id % 10 == 9 ? std::string("/missing") : "/item/" + std::to_string(r.id)).c_str(),
                  r.status, r.size);
      const bool right = r.id % 10 == 9 ? r.status == 404 && r.size == 0
                                        : r.status == 200 && r.size == std::size_t(r.id) * 10;
      bad += !right;
    }
    // [yielder]
    bad += n != kUrls;
  }
  const auto concurrent = std::chrono::steady_clock::now() - t0;

  const auto t1 = std::chrono::steady_clock::now();
  for (int id = 0; id < kUrls; ++id) {
    const Response r = fetch(io, server, id);
    bad += r.status != (id % 10 == 9 ? 404u : 200u);
  }
  const auto one_by_one = std::chrono::steady_clock::now() - t1;

  server_tasks.cancel();
  server_tasks.join();
  auto ms = [](auto d) { return (long long)std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf("%d URLs: %lld ms 8 at a time through Yielder(8), %lld ms one by one\n", kUrls,
              ms(concurrent), ms(one_by_one));
  if (bad) std::printf("%d wrong responses\n", bad);
  return bad == 0 ? 0 : 1;
}
