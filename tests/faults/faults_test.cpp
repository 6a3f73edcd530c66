// SPDX-License-Identifier: Apache-2.0
//
// Faults and misuse: what goes wrong in user code or on bad input is caught and reported, and the
// group stays usable. The allocation-failure tests replace the global operator new in this program
// with one that can be armed to fail.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

// ---- An operator new that fails on demand -------------------------------------------------
namespace {
std::atomic<bool> fail_next_allocation{false};
}  // namespace

void* operator new(std::size_t size) {
  if (fail_next_allocation.exchange(false)) throw std::bad_alloc();
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
struct NotAnException {
  int code;
};

// Big enough that the task's storage comes from operator new, not from a recycled small block.
struct BigCapture {
  char bytes[4096] = {};
};

struct ThrowsOnDestruction {
  bool armed = false;
  ThrowsOnDestruction() = default;
  ThrowsOnDestruction(const ThrowsOnDestruction& o) : armed(o.armed) {}
  ThrowsOnDestruction(ThrowsOnDestruction&& o) noexcept : armed(o.armed) { o.armed = false; }
  ~ThrowsOnDestruction() noexcept(false) {
    if (armed) throw std::runtime_error("destructor of a captured object");
  }
};

int recurse_forever(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // never: depth only grows, but the compiler cannot tell
  return recurse_forever(depth + 1) + frame[0];  // not a tail call: every frame stays
}
}  // namespace

TEST_CASE("a task throwing an int or a non-std struct: join rethrows it and the group is reusable") {
  fu::Group g;
  g.spawn([] { throw 42; });
  CHECK_THROWS_AS(g.join(), int);
  g.spawn([] { throw NotAnException{7}; });
  try {
    g.join();
    FAIL("join did not rethrow");
  } catch (const NotAnException& e) {
    CHECK(e.code == 7);
  }
  int ran = 0;
  g.spawn([&] { ++ran; });
  g.join();
  CHECK(ran == 1);
  CHECK(g.size() == 0);
}

TEST_CASE("a captured object whose destructor throws during a cancel: reported by join, not lost") {
  fu::Group g;
  ThrowsOnDestruction object;
  object.armed = true;
  g.spawn([o = std::move(object)] { fu::this_task::sleep_for(1h); });
  g.spawn([] { fu::this_task::sleep_for(1h); });
  CHECK_FALSE(g.join_for(10ms));
  g.cancel();
  CHECK_THROWS_WITH_AS(g.join(), "destructor of a captured object", std::runtime_error);
  CHECK(g.size() == 0);
  int ran = 0;
  g.spawn([&] { ++ran; });
  g.join();
  CHECK(ran == 1);
}

TEST_CASE("std::bad_alloc from spawn leaves the group unchanged, and later spawns and joins work") {
  fu::Group g;
  int ran = 0;
  g.spawn([&] { ++ran; });
  REQUIRE(g.size() == 1);
  fail_next_allocation = true;
  CHECK_THROWS_AS(g.spawn([&ran, big = BigCapture{}] { ran += 100 + big.bytes[0]; }), std::bad_alloc);
  fail_next_allocation = false;
  CHECK(g.size() == 1);
  g.spawn([&ran, big = BigCapture{}] { ran += 10 + big.bytes[0]; });
  g.join();
  CHECK(ran == 11);
  CHECK(g.size() == 0);
}

TEST_CASE("std::bad_alloc from a Pool's and a Yielder's spawn leaves them consistent") {
  fu::Pool p(1);
  fail_next_allocation = true;
  CHECK_THROWS_AS(p.spawn([big = BigCapture{}] { (void)big; }), std::bad_alloc);
  fail_next_allocation = false;
  CHECK(p.size() == 0);
  CHECK(p.free_count() == 1);
  int ran = 0;
  p.spawn([&] { ++ran; });
  p.join();
  CHECK(ran == 1);

  fu::Yielder<int> y(2);
  y.spawn([] { return 1; });
  fail_next_allocation = true;
  CHECK_THROWS_AS(y.spawn([big = BigCapture{}] { return 100 + big.bytes[0]; }), std::bad_alloc);
  fail_next_allocation = false;
  y.spawn([] { return 2; });
  int sum = 0;
  for (int v : y) sum += v;
  CHECK(sum == 3);
}

TEST_CASE("a task that overflows its stack dies at the guard page with SIGSEGV") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The default action, so the kernel ends the child: doctest's handler (and a sanitizer's)
    // would report the crash and exit instead, hiding how the process ended.
    std::signal(SIGSEGV, SIG_DFL);
    fu::Group g(fu::StackSize{64 * 1024});
    g.spawn([] { recurse_forever(0); });
    g.join();
    ::_exit(0);  // never reached: the stack overflows first
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGSEGV);
}

TEST_CASE("misuse: joining a group from one of its own tasks throws std::logic_error") {
  fu::Group g;
  bool caught = false;
  g.spawn([&] {
    try {
      g.join();
    } catch (const std::logic_error&) {
      caught = true;
    }
  });
  g.join();
  CHECK(caught);
}

TEST_CASE("misuse: zero or negative limits throw std::invalid_argument") {
  CHECK_THROWS_AS(fu::Pool(0), std::invalid_argument);
  CHECK_THROWS_AS(fu::Pool(-3), std::invalid_argument);
  CHECK_THROWS_AS(fu::Yielder<int>(0), std::invalid_argument);
  CHECK_THROWS_AS(fu::OrderedYielder<int>(-1), std::invalid_argument);
  CHECK_THROWS_AS(fu::yielding<int>(0, [](fu::Yielder<int>&) {}), std::invalid_argument);
  CHECK_THROWS_AS(fu::ordered_yielding<int>(-2, [](fu::OrderedYielder<int>&) {}),
                  std::invalid_argument);
  CHECK_THROWS_AS(fu::Semaphore(-1), std::invalid_argument);
}

TEST_CASE("misuse: a release past the semaphore's max() throws std::overflow_error, count unchanged") {
  fu::Semaphore s(fu::Semaphore::max() - 1);
  CHECK_THROWS_AS(s.release(2), std::overflow_error);
  CHECK(s.count() == fu::Semaphore::max() - 1);
  s.release(1);
  CHECK(s.count() == fu::Semaphore::max());
  CHECK_THROWS_AS(s.release(), std::overflow_error);
}

TEST_CASE("misuse: using a stream's iterator after the stream ended throws std::logic_error") {
  fu::Yielder<int> y;
  y.put(1);
  auto it = y.begin();
  CHECK(*it == 1);
  ++it;
  CHECK(it == y.end());  // the stream has ended
  CHECK_THROWS_AS(*it, std::logic_error);
  CHECK_THROWS_AS(++it, std::logic_error);
  auto end = y.end();
  CHECK_THROWS_AS(*end, std::logic_error);
  CHECK_THROWS_AS(++end, std::logic_error);
}
