// SPDX-License-Identifier: Apache-2.0
//
// fu::live_tasks(), fu::dump_tasks(), fu::dump_tasks_on_signal(), fu::this_task::set_name().
// The scenes run on one thread with round_robin: a task counts itself in `parked` right before it
// parks, and parks without yielding in between, so once a yield loop sees every count, every task
// of the scene is parked. A sleep only ever stands for elapsed time.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <semaphore>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fiberutils/fiberutils.hpp>

#include "../test_support.hpp"

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {

const fu::TaskInfo& named(const std::vector<fu::TaskInfo>& tasks, const std::string& name) {
  for (const fu::TaskInfo& t : tasks)
    if (t.name == name) return t;
  FAIL("no task named " << name);
  throw std::logic_error("unreachable");
}

std::size_t in_group(const std::vector<fu::TaskInfo>& tasks, const void* group,
                     fu::TaskState state) {
  std::size_t n = 0;
  for (const fu::TaskInfo& t : tasks) n += t.group == group && t.state == state;
  return n;
}

// Lets the other fibers of this thread run until `count` reaches `n`.
void yield_until(const int& count, int n) {
  while (count < n) fu::this_task::yield();
}

}  // namespace

TEST_CASE("with no group alive there are no live tasks") {
  CHECK(fu::live_tasks().empty());
  std::ostringstream s;
  fu::dump_tasks(s);
  CHECK(s.str() == "fiberutils: 0 live tasks in 0 groups\n");
}

TEST_CASE("a dump shows each task of a scene in its state, wait kind, group and group kind") {
  fu::Semaphore never(0);
  fu::Semaphore blocker_returned(0);
  std::binary_semaphore blocker_gate(0);
  // Lets the blocking call end however the test case ends (a failed REQUIRE included), so that
  // the run_blocking pool can stop at exit; the normal path releases it before the cancel, so
  // that the call has returned (and let go of blocker_gate) when g.join() returns.
  struct Release {
    std::binary_semaphore& gate;
    bool done = false;
    void now() {
      if (!std::exchange(done, true)) gate.release();
    }
    ~Release() { now(); }
  } release_blocker{blocker_gate};
  int parked = 0;
  std::vector<fu::TaskInfo> seen;
  std::string text;
  const std::thread::id here = std::this_thread::get_id();

  fu::Yielder<int> stream;
  fu::Pool pool(1);
  fu::Group g;
  g.spawn([&] {
    fu::this_task::set_name("sleeper");
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  g.spawn([&] {
    fu::this_task::set_name("semaphore");
    ++parked;
    never.acquire();
  });
  g.spawn([&] {
    fu::this_task::set_name("joiner");
    fu::Group inner;
    inner.spawn([&] {
      fu::this_task::set_name("inner sleeper");
      ++parked;
      fu::this_task::sleep_for(1h);
    });
    ++parked;
    inner.join();
  });
  stream.spawn([&] {
    fu::this_task::set_name("producer");
    ++parked;
    fu::this_task::sleep_for(1h);
    return 1;
  });
  g.spawn([&] {
    fu::this_task::set_name("consumer");
    ++parked;
    for (int v : stream) (void)v;
  });
  g.spawn([&] {
    fu::this_task::set_name("blocker");
    ++parked;
    fu::run_blocking([&] { blocker_gate.acquire(); });
    blocker_returned.release();
  });
  pool.spawn([&] {
    fu::this_task::set_name("pool holder");
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  pool.spawn([] {});
  pool.spawn([] {});

  fu::Group observers;
  observers.spawn([&] {
    fu::this_task::set_name("observer");
    yield_until(parked, 8);
    fu::this_task::sleep_for(50ms);  // elapsed time for in_state_for
    seen = fu::live_tasks();
    std::ostringstream s;
    fu::dump_tasks(s);
    text = s.str();
  });
  observers.join();

  CHECK(seen.size() == 5 + 1 + 1 + 3 + 1);  // g's, inner's, the stream's, the pool's, observer
  const fu::TaskInfo& observer = named(seen, "observer");
  CHECK(observer.state == fu::TaskState::running);
  CHECK(observer.waiting_in == "");
  const fu::TaskInfo& sleeper = named(seen, "sleeper");
  CHECK(sleeper.state == fu::TaskState::suspended);
  CHECK(sleeper.waiting_in == "sleep");
  CHECK(sleeper.group_kind == "Group");
  CHECK(sleeper.thread == here);
  CHECK(sleeper.in_state_for >= 30ms);  // 50 ms, less a coarse tick at each end
  CHECK(sleeper.in_state_for < 60s);
  CHECK(sleeper.spawned_at == "");
  const void* gid = sleeper.group;
  CHECK(named(seen, "semaphore").waiting_in == "semaphore");
  CHECK(named(seen, "joiner").waiting_in == "join");
  CHECK(named(seen, "consumer").waiting_in == "stream");
  CHECK(named(seen, "blocker").waiting_in == "run_blocking");
  CHECK(in_group(seen, gid, fu::TaskState::suspended) == 5);
  CHECK(in_group(seen, gid, fu::TaskState::running) == 0);
  CHECK(in_group(seen, gid, fu::TaskState::queued) == 0);

  const fu::TaskInfo& inner = named(seen, "inner sleeper");
  CHECK(inner.group != gid);
  CHECK(inner.group_kind == "Group");
  CHECK(inner.waiting_in == "sleep");

  const fu::TaskInfo& producer = named(seen, "producer");
  CHECK(producer.group_kind == "Yielder");
  CHECK(producer.waiting_in == "sleep");

  const fu::TaskInfo& holder = named(seen, "pool holder");
  CHECK(holder.group_kind == "Pool");
  CHECK(in_group(seen, holder.group, fu::TaskState::suspended) == 1);
  CHECK(in_group(seen, holder.group, fu::TaskState::queued) == 2);
  for (const fu::TaskInfo& t : seen)
    if (t.state == fu::TaskState::queued) {
      CHECK(t.group == holder.group);
      CHECK(t.name == "");
      CHECK(t.waiting_in == "");
      CHECK(t.thread == here);
    }

  CHECK(text.find("fiberutils: 11 live tasks in 5 groups\n") == 0);
  CHECK(text.find("Group ") != std::string::npos);
  CHECK(text.find(": 5 tasks (0 running, 5 suspended, 0 queued)\n") != std::string::npos);
  CHECK(text.find(": 3 tasks (0 running, 1 suspended, 2 queued)\n") != std::string::npos);
  CHECK(text.find(": 1 task (1 running, 0 suspended, 0 queued)\n") != std::string::npos);
  CHECK(text.find("  suspended in semaphore for ") != std::string::npos);
  CHECK(text.find("\"pool holder\"\n") != std::string::npos);
  CHECK(text.find("  running for ") != std::string::npos);
  CHECK(text.find("\"observer\"\n") != std::string::npos);
  CHECK(text.find("  queued on thread ") != std::string::npos);

  // The blocking call must return before the cancel: a cancelled run_blocking lets its task go
  // while the call still runs, and it uses blocker_gate, on this stack.
  release_blocker.now();
  blocker_returned.acquire();
  g.cancel();
  pool.cancel();
  stream.cancel();
  g.join();
  pool.join();
}

TEST_CASE("the task that asks sees itself running") {
  std::vector<fu::TaskInfo> seen;
  fu::Group g;
  g.spawn([&] {
    fu::this_task::set_name("me");
    seen = fu::live_tasks();
  });
  g.join();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].state == fu::TaskState::running);
  CHECK(seen[0].waiting_in == "");
  CHECK(seen[0].name == "me");
  CHECK(fu::live_tasks().empty());
}

TEST_CASE("OrderedYielder and a fail-fast Pool are reported with their kinds") {
  int parked = 0;
  std::vector<fu::TaskInfo> seen;
  fu::OrderedYielder<int> ordered;
  fu::Pool pool(2, fu::fail_fast);
  ordered.spawn([&] {
    fu::this_task::set_name("ordered");
    ++parked;
    fu::this_task::sleep_for(1h);
    return 1;
  });
  pool.spawn([&] {
    fu::this_task::set_name("pooled");
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  fu::Group observers;
  observers.spawn([&] {
    yield_until(parked, 2);
    seen = fu::live_tasks();
  });
  observers.join();
  CHECK(named(seen, "ordered").group_kind == "OrderedYielder");
  CHECK(named(seen, "pooled").group_kind == "Pool");
  ordered.cancel();
  pool.cancel();
  pool.join();
}

TEST_CASE("a name shows until its task ends, the last set_name wins, and outside a task it does nothing") {
  fu::this_task::set_name("not a task");  // no effect, no throw
  int parked = 0;
  std::vector<fu::TaskInfo> first, second;
  fu::Group g;
  g.spawn([&] {
    fu::this_task::set_name("first");
    fu::this_task::set_name("second");
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  fu::Group observers;
  observers.spawn([&] {
    fu::this_task::set_name("observer");
    yield_until(parked, 1);
    first = fu::live_tasks();
  });
  observers.join();
  REQUIRE(first.size() == 2);  // and the observer
  CHECK(named(first, "second").state == fu::TaskState::suspended);
  for (const fu::TaskInfo& t : first) CHECK(t.name != "first");
  g.cancel();
  g.join();
  // The runner that ran the named task runs the next one: its name must not carry over.
  g.spawn([&] {
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  observers.spawn([&] {
    fu::this_task::set_name("observer");
    yield_until(parked, 2);
    second = fu::live_tasks();
  });
  observers.join();
  REQUIRE(second.size() == 2);
  for (const fu::TaskInfo& t : second)
    if (t.name != "observer") CHECK(t.name == "");
  g.cancel();
}

TEST_CASE("dumps from another thread while tasks start, park and end on two threads are consistent") {
  std::atomic<bool> stop{false};
  std::atomic<long> dumps_with_tasks{0}, bad{0};
  std::thread dumper([&] {
    while (!stop.load()) {
      const std::vector<fu::TaskInfo> tasks = fu::live_tasks();
      for (const fu::TaskInfo& t : tasks) {
        const bool kind_ok = t.group_kind == "Group" || t.group_kind == "Pool";
        const bool wait_ok = (t.state == fu::TaskState::suspended) != t.waiting_in.empty();
        const bool name_ok = t.name.empty() || t.name == "worker";
        if (!kind_ok || !wait_ok || !name_ok || t.group == nullptr) ++bad;
      }
      std::ostringstream s;
      fu::dump_tasks(s);
      if (!tasks.empty()) ++dumps_with_tasks;
    }
  });
  {
    fu::Workers workers(2);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    for (int round = 0; round < 3 || dumps_with_tasks.load() < 20; ++round) {
      REQUIRE(std::chrono::steady_clock::now() < give_up);
      fu::Semaphore sem(2);
      fu::Group g;
      fu::Pool p(4);
      for (long i = 0; i < test_support::scaled(400); ++i) {
        g.spawn([i] {
          if (i % 2) fu::this_task::set_name("worker");
          fu::this_task::sleep_for(std::chrono::microseconds(i % 7));
        });
        p.spawn([&sem] {
          sem.acquire();
          fu::this_task::yield();
          sem.release();
        });
      }
      g.join();
      p.join();
    }
  }
  stop = true;
  dumper.join();
  CHECK(bad.load() == 0);
  CHECK(dumps_with_tasks.load() >= 20);
}

TEST_CASE("dump_tasks_on_signal prints the dump to stderr when the signal is raised") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const int saved_stderr = ::dup(2);
  REQUIRE(saved_stderr >= 0);
  int parked = 0;
  std::string out;
  fu::Group g;
  g.spawn([&] {
    fu::this_task::set_name("waiting for the signal");
    ++parked;
    fu::this_task::sleep_for(1h);
  });
  fu::Group observers;
  observers.spawn([&] {
    yield_until(parked, 1);
    fu::dump_tasks_on_signal(SIGUSR1);
    REQUIRE(::dup2(fds[1], 2) == 2);
    std::raise(SIGUSR1);
    // The helper thread prints; read (blocking this thread) until its last line arrives.
    char buf[4096];
    while (out.find("\"waiting for the signal\"\n") == std::string::npos) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ::dup2(saved_stderr, 2);
  });
  observers.join();
  ::close(saved_stderr);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(out.find("fiberutils: 2 live tasks in 2 groups\n") == 0);  // and the observer
  CHECK(out.find("  suspended in sleep for ") != std::string::npos);
  g.cancel();
}

TEST_CASE("dump_tasks_on_signal refuses signals that cannot be caught") {
  CHECK_THROWS_AS(fu::dump_tasks_on_signal(SIGKILL), std::invalid_argument);
  CHECK_THROWS_AS(fu::dump_tasks_on_signal(SIGSTOP), std::invalid_argument);
  CHECK_THROWS_AS(fu::dump_tasks_on_signal(0), std::invalid_argument);
  CHECK_THROWS_AS(fu::dump_tasks_on_signal(NSIG), std::invalid_argument);
}
