// SPDX-License-Identifier: Apache-2.0
//
// Faults and misuse: what goes wrong in user code or on bad input is caught and reported, and the
// group stays usable. The allocation-failure tests replace the global operator new in this program
// with one that can be armed to fail.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/fiber/operations.hpp>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

// ---- An operator new that fails on demand, and counts what is allocated -------------------
// The replacement covers every allocation of the program, the library's included: task storage
// (lib/task_alloc.cpp: small tasks come from slabs that it takes from ::operator new, larger ones
// straight from ::operator new), the executor's runner lists, and stream bookkeeping.
namespace {
// 0: disarmed. N > 0: the Nth allocation from now throws std::bad_alloc.
std::atomic<long> failing_allocation{0};
std::atomic<long> live_allocations{0};

void arm_failure_of_allocation(long n) { failing_allocation = n; }
// Disarms; true when the armed failure happened.
bool disarm() { return failing_allocation.exchange(0) == -1; }
}  // namespace

void* operator new(std::size_t size) {
  long n = failing_allocation.load();
  while (n > 0 && !failing_allocation.compare_exchange_weak(n, n == 1 ? -1 : n - 1)) {}
  if (n == 1) throw std::bad_alloc();
  if (void* p = std::malloc(size ? size : 1)) {
    ++live_allocations;
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p) --live_allocations;
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

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
  arm_failure_of_allocation(1);
  CHECK_THROWS_AS(g.spawn([&ran, big = BigCapture{}] { ran += 100 + big.bytes[0]; }), std::bad_alloc);
  CHECK(disarm());
  CHECK(g.size() == 1);
  g.spawn([&ran, big = BigCapture{}] { ran += 10 + big.bytes[0]; });
  g.join();
  CHECK(ran == 11);
  CHECK(g.size() == 0);
}

TEST_CASE("std::bad_alloc from a Pool's and a Yielder's spawn leaves them consistent") {
  fu::Pool p(1);
  arm_failure_of_allocation(1);
  CHECK_THROWS_AS(p.spawn([big = BigCapture{}] { (void)big; }), std::bad_alloc);
  CHECK(disarm());
  CHECK(p.size() == 0);
  CHECK(p.free_count() == 1);
  int ran = 0;
  p.spawn([&] { ++ran; });
  p.join();
  CHECK(ran == 1);

  fu::Yielder<int> y(2);
  y.spawn([] { return 1; });
  arm_failure_of_allocation(1);
  CHECK_THROWS_AS(y.spawn([big = BigCapture{}] { return 100 + big.bytes[0]; }), std::bad_alloc);
  CHECK(disarm());
  y.spawn([] { return 2; });
  int sum = 0;
  for (int v : y) sum += v;
  CHECK(sum == 3);
}

namespace {
// Calls spawn_once(attempt) with the 1st, 2nd, 3rd ... allocation inside it failing, until a
// spawn needs fewer allocations than that. Every attempt must either throw std::bad_alloc and
// leave size() as it was, or spawn (size() one more). Returns the attempts that spawned, in order.
template <class Container, class SpawnOnce>
std::vector<long> spawn_with_each_allocation_failing(Container& c, long& attempt,
                                                     SpawnOnce spawn_once) {
  std::vector<long> spawned;
  for (long n = 1;; ++n) {
    CAPTURE(n);
    const std::size_t size_before = c.size();
    bool threw = false;
    arm_failure_of_allocation(n);
    try {
      spawn_once(attempt);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    const bool failure_happened = disarm();
    CHECK(threw == failure_happened);  // spawn swallows no allocation failure, invents none
    CHECK(c.size() == size_before + (threw ? 0 : 1));
    if (!threw) spawned.push_back(attempt);
    ++attempt;
    if (!failure_happened) return spawned;  // this spawn made fewer than n allocations
  }
}

// One round over a group, a full pool, and both kinds of stream, with every allocation of every
// spawn failing in turn. Captures bigger than the task allocator's size classes make every task
// come from ::operator new, so each sweep meets at least one failure. Returns how many failed.
long run_allocation_failure_round() {
  long attempt = 0, failed = 0;
  std::vector<long> ran;
  ran.reserve(1000);
  {
    fu::Group g;
    auto spawned = spawn_with_each_allocation_failing(g, attempt, [&](long i) {
      g.spawn([&ran](long i) { ran.push_back(i); }, i);
    });
    auto spawned_big = spawn_with_each_allocation_failing(g, attempt, [&](long i) {
      g.spawn([&ran, big = BigCapture{}](long i) { ran.push_back(i + big.bytes[0]); }, i);
    });
    failed += attempt - static_cast<long>(spawned.size() + spawned_big.size());
    spawned.insert(spawned.end(), spawned_big.begin(), spawned_big.end());
    g.join();
    CHECK(ran == spawned);  // the successful spawns ran, each once, in FIFO order
    CHECK(g.size() == 0);
  }
  {
    // Pool(1) held by a task waiting on a semaphore: the spawns under test queue for a slot.
    fu::Pool p(1);
    fu::Semaphore gate(0);
    p.spawn([&gate] { gate.acquire(); });
    ran.clear();
    const long before = attempt;
    auto spawned = spawn_with_each_allocation_failing(p, attempt, [&](long i) {
      p.spawn([&ran, big = BigCapture{}](long i) { ran.push_back(i + big.bytes[0]); }, i);
    });
    failed += attempt - before - static_cast<long>(spawned.size());
    CHECK(p.free_count() == 0);
    gate.release();
    p.join();
    CHECK(ran == spawned);
    CHECK(p.free_count() == 1);
  }
  {
    fu::Yielder<long> y(2);
    const long before = attempt;
    auto spawned = spawn_with_each_allocation_failing(y, attempt, [&](long i) {
      y.spawn([big = BigCapture{}](long i) { return i + big.bytes[0]; }, i);
    });
    failed += attempt - before - static_cast<long>(spawned.size());
    std::vector<long> got(y.begin(), y.end());
    std::sort(got.begin(), got.end());
    CHECK(got == spawned);
  }
  {
    // A failed spawn must give up its place in the order, or the stream would wait for it.
    fu::OrderedYielder<long> o(2);
    const long before = attempt;
    auto spawned = spawn_with_each_allocation_failing(o, attempt, [&](long i) {
      o.spawn([big = BigCapture{}](long i) {
        fu::this_task::yield();
        return i + big.bytes[0];
      }, i);
    });
    failed += attempt - before - static_cast<long>(spawned.size());
    std::vector<long> got(o.begin(), o.end());
    CHECK(got == spawned);
  }
  return failed;
}
}  // namespace

TEST_CASE("every allocation of spawn failing in turn: bad_alloc, size() unchanged, later work done, "
          "nothing leaked") {
  // A thread of its own, so that the first spawns also meet the allocations that set up the
  // thread's executor. The first round warms up what is kept for reuse (task slabs, runners and
  // their stacks); after that, a round that leaked would leave more allocations live each time.
  long failed_allocations = 0;
  std::vector<long> live_after_round;
  std::thread([&] {
    // Not under test: Boost.Fiber 1.74 allocates a thread's scheduler inside the noexcept
    // boost::fibers::context::active() at the thread's first fiber operation, so an allocation
    // failure there terminates inside Boost. Setting that up first leaves every allocation that
    // fiberutils makes, the executor's included, to the sweep.
    boost::this_fiber::yield();
    for (int round = 0; round < 4; ++round) {
      failed_allocations += run_allocation_failure_round();
      live_after_round.push_back(live_allocations.load());
    }
  }).join();
  // Each round's four big-capture sweeps failed at least once, and the first round also failed
  // in the executor's set-up and the task allocator's first slab.
  CHECK(failed_allocations > 4 * 4);
  CAPTURE(live_after_round[1]);
  CAPTURE(live_after_round[2]);
  CAPTURE(live_after_round[3]);
  CHECK(live_after_round[2] == live_after_round[1]);
  CHECK(live_after_round[3] == live_after_round[1]);
  MESSAGE("allocation failures injected into spawn: " << failed_allocations);
}

namespace {
// Under AddressSanitizer the child may end by ASan's own stack-overflow report and exit status
// instead of the signal, if the runtime keeps its SIGSEGV handler (allow_user_segv_handler=0).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// Child exit codes that say why the death test went wrong.
constexpr int kNoGuardPageFound = 3;
constexpr int kFaultOutsideGuardPage = 4;
constexpr int kSurvivedOverflow = 5;
constexpr int kSurvivedMisuse = 6;

// The guard page of the running task's stack: the inaccessible mapping right below the one
// that holds the stack pointer, read from /proc/self/maps. Null bounds when there is none.
std::uintptr_t guard_low = 0, guard_high = 0;

void find_guard_page_below_this_stack() {
  char here = 0;
  const auto sp = reinterpret_cast<std::uintptr_t>(&here);
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return;
  std::uintptr_t prev_lo = 0, prev_hi = 0;
  bool prev_inaccessible = false;
  char line[512];
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3) continue;
    if (lo <= sp && sp < hi) {
      if (prev_inaccessible && prev_hi == lo) {
        guard_low = prev_lo;
        guard_high = prev_hi;
      }
      break;
    }
    prev_lo = lo;
    prev_hi = hi;
    prev_inaccessible = std::strncmp(perms, "---", 3) == 0;
  }
  std::fclose(maps);
}

// Runs on the alternate signal stack. A fault in the guard page returns with the default action
// restored (SA_RESETHAND): the instruction faults again and the kernel ends the process by
// SIGSEGV. A fault anywhere else is reported by an exit status instead.
constexpr char kGuardPageFault[] = "fault in the guard page\n";

void on_segv(int, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (addr < guard_low || addr >= guard_high) ::_exit(kFaultOutsideGuardPage);
  // Shows the parent that the SIGSEGV it sees came from the guard page.
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kGuardPageFault, sizeof kGuardPageFault - 1);
}
}  // namespace

// Runs body() in a forked child with its stderr captured; returns the child's wait status.
struct ChildOutcome {
  int status = 0;
  std::string err;
};
template <class Body>
ChildOutcome run_in_child(Body body) {
  int err_pipe[2];
  REQUIRE(::pipe(err_pipe) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(err_pipe[0]);
    // doctest's crash handler, inherited from the parent, would catch an abort() and exit (under
    // TSan with a report of its signal-unsafe calls) instead of letting the child die by SIGABRT.
    ::signal(SIGABRT, SIG_DFL);
    body();
    ::_exit(0);
  }
  ::close(err_pipe[1]);
  ChildOutcome out;
  char buf[4096];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) out.err.append(buf, static_cast<std::size_t>(n));
  ::close(err_pipe[0]);
  REQUIRE(::waitpid(child, &out.status, 0) == child);
  return out;
}

TEST_CASE("a task that overflows its stack dies at the guard page with SIGSEGV") {
  const ChildOutcome child = run_in_child([] {
    static char alternate_stack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = alternate_stack;
    ss.ss_size = sizeof alternate_stack;
    ::sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, nullptr);
    fu::Group g(fu::StackSize{64 * 1024});
    g.spawn([] {
      find_guard_page_below_this_stack();
      if (guard_low == guard_high) ::_exit(kNoGuardPageFound);
      recurse_forever(0);
    });
    g.join();
    ::_exit(kSurvivedOverflow);  // never reached: the stack overflows first
  });
  const int status = child.status;
  const std::string& child_stderr = child.err;
  CAPTURE(child_stderr);
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    CAPTURE(code);
    CHECK(code != kNoGuardPageFound);       // the task's stack has no guard page below it
    CHECK(code != kFaultOutsideGuardPage);  // the overflow faulted somewhere else
    CHECK(code != kSurvivedOverflow);
    if (kAddressSanitizer) {
      // ASan kept its handler: its report must name the stack overflow.
      CHECK(child_stderr.find("stack-overflow") != std::string::npos);
    } else {
      FAIL("the child exited instead of dying by SIGSEGV");
    }
  } else {
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGSEGV);
    CHECK(child_stderr.find(kGuardPageFault) != std::string::npos);
  }
}

TEST_CASE("misuse: destroying a semaphore while a fiber waits on it aborts with a message") {
  const ChildOutcome child = run_in_child([] {
    auto* s = new fu::Semaphore(0);
    bool started = false;
    fu::Group g;
    g.spawn([s, &started] {
      started = true;  // from here to its wait in acquire() the task does not yield
      s->acquire();    // waits forever: nothing releases
    });
    while (!started) fu::this_task::yield();
    delete s;  // must not return: the waiter would wake up inside freed memory
    ::_exit(kSurvivedMisuse);
  });
  CAPTURE(child.err);
  REQUIRE(WIFSIGNALED(child.status));
  CHECK(WTERMSIG(child.status) == SIGABRT);
  CHECK(child.err.find("fiberutils::Semaphore destroyed while 1 fiber(s) wait on it") !=
        std::string::npos);
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
