// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/pool.hpp>

#include <stdexcept>

namespace fiberutils {
namespace {
std::ptrdiff_t checked_limit(std::ptrdiff_t limit) {
  if (limit < 1) throw std::invalid_argument("fiberutils::Pool: limit must be at least 1");
  return limit;
}
}  // namespace

Pool::Pool(std::ptrdiff_t limit, StackSize stack)
    : Group(stack), limit_(static_cast<std::size_t>(checked_limit(limit))), slots_(limit) {}

// Tasks call release_locked() on this pool until they finish: wait before slots_ goes away.
Pool::~Pool() { shutdown(); }

bool Pool::try_admit_locked() noexcept { return slots_.try_acquire(); }

void Pool::release_locked() noexcept { slots_.release(); }

void Pool::wait_available() {
  slots_.acquire();
  // Give the slot back the way a finishing task does, so a task queued meanwhile starts.
  std::lock_guard<std::mutex> lk(m_);
  release_locked();
  admit_pending_locked();
}

std::size_t Pool::free_count() const noexcept { return static_cast<std::size_t>(slots_.count()); }

}  // namespace fiberutils
