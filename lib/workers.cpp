// SPDX-License-Identifier: Apache-2.0
//
// fu::Workers: starts and stops the threads of a SharedRunners (lib/executor.cpp holds the
// queue and the runners).
#include <fiberutils/workers.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "executor.hpp"

namespace fiberutils {

namespace {
unsigned checked_threads(unsigned n) {
  if (n == 0) throw std::invalid_argument("fiberutils::Workers: needs at least 1 thread");
  if (detail::SharedRunners::thread_belongs_to_one())
    throw std::logic_error(
        "fiberutils::Workers: this thread already belongs to a Workers; a thread can share "
        "tasks with one Workers at a time");
  return n;
}
}  // namespace

Workers::Workers() : Workers(std::max(1u, std::thread::hardware_concurrency())) {}

Workers::Workers(unsigned n) : owner_(std::this_thread::get_id()) {
  const unsigned threads = checked_threads(n);
  runners_ = std::make_unique<detail::SharedRunners>();
  runners_->join_owner();
  try {
    helpers_.reserve(threads - 1);
    for (unsigned i = 1; i < threads; ++i)
      helpers_.emplace_back([r = runners_.get()] { r->serve(); });
  } catch (...) {
    // No task could be spawned yet (we have not returned): stop the helpers that started.
    runners_->stop_now();
    for (auto& t : helpers_) t.join();
    throw;
  }
  // Helpers take part from the start: a burst spawned right away is shared at once.
  runners_->wait_for_threads(threads);
}

Workers::~Workers() {
  if (std::this_thread::get_id() != owner_) {
    // The owner thread's runners and installed executor belong to that thread: ending them from
    // here would leave it with dangling pointers. Fail loudly instead of corrupting memory.
    std::fprintf(stderr, "fiberutils::Workers destroyed on another thread than the one that created it\n");
    std::abort();
  }
  runners_->drain_and_stop();
  for (auto& t : helpers_) t.join();
}

}  // namespace fiberutils
