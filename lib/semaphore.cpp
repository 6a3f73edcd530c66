// SPDX-License-Identifier: Apache-2.0
#include <fiberutils/semaphore.hpp>

#include <stdexcept>

#include <fiberutils/detail/wait.hpp>
#include <fiberutils/this_task.hpp>

namespace fiberutils {

Semaphore::Semaphore(std::ptrdiff_t initial) : count_(initial) {
  if (initial < 0) throw std::invalid_argument("fiberutils::Semaphore: initial count must be >= 0");
}

Semaphore::~Semaphore() = default;

bool Semaphore::try_acquire() noexcept {
  std::lock_guard<std::mutex> lk(m_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

namespace {
// Counts a waiter for as long as it waits, and passes a wake-up on when it leaves without a
// permit (cancelled or timed out) while permits are free: notify_one may have picked it.
struct WaiterScope {
  std::size_t& waiters;
  std::ptrdiff_t& count;
  boost::fibers::condition_variable_any& cv;
  bool took = false;
  WaiterScope(std::size_t& w, std::ptrdiff_t& c, boost::fibers::condition_variable_any& v)
      : waiters(w), count(c), cv(v) {
    ++waiters;
  }
  ~WaiterScope() {
    --waiters;
    if (!took && count > 0 && waiters > 0) cv.notify_one();
  }
};
}  // namespace

void Semaphore::acquire() {
  const std::stop_token stop = this_task::stop_token();
  std::unique_lock<std::mutex> lk(m_);
  WaiterScope scope(waiters_, count_, cv_);
  detail::wait_cancellable(lk, cv_, stop, std::nullopt, [this] { return count_ > 0; });
  --count_;
  scope.took = true;
}

bool Semaphore::try_acquire_until_steady(std::chrono::steady_clock::time_point tp) {
  const std::stop_token stop = this_task::stop_token();
  std::unique_lock<std::mutex> lk(m_);
  WaiterScope scope(waiters_, count_, cv_);
  if (!detail::wait_cancellable(lk, cv_, stop, tp, [this] { return count_ > 0; })) return false;
  --count_;
  scope.took = true;
  return true;
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) throw std::invalid_argument("fiberutils::Semaphore::release: n must be >= 0");
  std::lock_guard<std::mutex> lk(m_);
  if (n > max() - count_)
    throw std::overflow_error("fiberutils::Semaphore::release: count would exceed max()");
  count_ += n;
  if (waiters_ == 0 || n == 0) return;
  if (n == 1)
    cv_.notify_one();
  else
    cv_.notify_all();
}

std::ptrdiff_t Semaphore::count() const noexcept {
  std::lock_guard<std::mutex> lk(m_);
  return count_;
}

}  // namespace fiberutils
