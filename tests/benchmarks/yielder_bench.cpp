// SPDX-License-Identifier: Apache-2.0
//
// fu::Yielder (yielder.hpp) against a raw Boost.Fiber buffered_channel(1024) fed by a RawGroup's
// fibers and closed by a closer fiber: W4, a million results in completion order, and one value
// through a stream against one channel push + pop.
#include <memory>

#include <boost/fiber/all.hpp>
#include <fiberutils/fiberutils.hpp>

#include "bench.hpp"

namespace bench {

namespace fu = fiberutils;

long w4_unordered(bool fiberutils, const Params& p) {
  long sum = 0, count = 0;
  if (fiberutils) {
    fu::Yielder<long> y;
    for (long i = 0; i < p.n; ++i) y.spawn([](long i) { return i; }, i);
    for (long v : y) {
      sum += v;
      ++count;
    }
  } else {
    bf::buffered_channel<long> channel(1024);
    RawGroup g;
    for (long i = 0; i < p.n; ++i) g.spawn([&channel, i] { channel.push(i); });
    bf::fiber closer(std::allocator_arg, shared_stacks(), [&] {
      g.join();
      channel.close();
    });
    long v;
    while (channel.pop(v) == bf::channel_op_status::success) {
      sum += v;
      ++count;
    }
    closer.join();
  }
  check(count == p.n && sum == p.n * (p.n - 1) / 2, "W4 sum");
  return 0;
}

long micro_stream_value(bool fiberutils, const Params& p) {
  long sum = 0;
  if (fiberutils) {
    fu::Yielder<long> y;
    auto it = y.begin();
    for (long i = 0; i < p.n; ++i) {
      y.put(i);
      sum += *it;
      ++it;
    }
  } else {
    bf::buffered_channel<long> channel(1024);
    long v = 0;
    for (long i = 0; i < p.n; ++i) {
      channel.push(i);
      channel.pop(v);
      sum += v;
    }
  }
  check(sum == p.n * (p.n - 1) / 2, "stream values");
  return 0;
}

}  // namespace bench
