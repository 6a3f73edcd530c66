// SPDX-License-Identifier: Apache-2.0
//
// fu::live_tasks() and the registries it reads (live_tasks_state.hpp says what is recorded where
// and what it costs), fu::dump_tasks(), and the signal-driven dump.
#include <fiberutils/live_tasks.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <fiberutils/detail/task_group.hpp>

#include "boost_internals.hpp"
#include "live_tasks_state.hpp"

namespace fiberutils {
namespace detail {
namespace {

// Constant-initialised and trivially destructible, so that registration works in static
// constructors and destructors of any order, and a dump at exit finds them intact.
constinit std::mutex threads_mutex;
constinit ThreadRecord* threads_head = nullptr;
constinit std::mutex groups_mutex;
constinit LiveGroupEntry* groups_head = nullptr;  // oldest first: dumps list groups as made
constinit LiveGroupEntry* groups_tail = nullptr;

}  // namespace

// ---- registries -----------------------------------------------------------------------------

LiveGroupEntry::LiveGroupEntry(const TaskGroup* g) noexcept
    : group(g), owner(std::this_thread::get_id()) {
  std::lock_guard<std::mutex> lk(groups_mutex);
  prev_ = groups_tail;
  if (groups_tail) groups_tail->next_ = this; else groups_head = this;
  groups_tail = this;
}

LiveGroupEntry::~LiveGroupEntry() {
  std::lock_guard<std::mutex> lk(groups_mutex);
  if (prev_) prev_->next_ = next_; else groups_head = next_;
  if (next_) next_->prev_ = prev_; else groups_tail = prev_;
}

ThreadRecord& ThreadRecord::here() {
  thread_local ThreadRecord record;
  return record;
}

ThreadRecord::ThreadRecord() : id(std::this_thread::get_id()), tick(coarse_now_ns()) {
  std::lock_guard<std::mutex> lk(threads_mutex);
  next = threads_head;
  if (threads_head) threads_head->prev = this;
  threads_head = this;
}

ThreadRecord::~ThreadRecord() {
  std::lock_guard<std::mutex> lk(threads_mutex);
  if (prev) prev->next = next; else threads_head = next;
  if (next) next->prev = prev;
}

void ThreadRecord::add(RunnerRecord& r) noexcept {
  r.thread = this;
  tick.store(coarse_now_ns(), std::memory_order_relaxed);  // a fiber's creation costs far more
  std::lock_guard<std::mutex> lk(m);
  r.next = runners;
  if (runners) runners->prev = &r;
  runners = &r;
}

void ThreadRecord::remove(RunnerRecord& r) noexcept {
  std::lock_guard<std::mutex> lk(m);
  if (r.prev) r.prev->next = r.next; else runners = r.next;
  if (r.next) r.next->prev = r.prev;
}

void RunnerRecord::clear_name() noexcept {
  std::string old;  // freed after the lock
  {
    std::lock_guard<std::mutex> lk(thread->m);
    old.swap(name);
  }
  named = false;
}

namespace {

const char* wait_kind_name(std::uint8_t k) noexcept {
  switch (static_cast<WaitKind>(k)) {
    case WaitKind::join: return "join";
    case WaitKind::sleep: return "sleep";
    case WaitKind::semaphore: return "semaphore";
    case WaitKind::stream: return "stream";
    case WaitKind::put: return "put";
    case WaitKind::run_blocking: return "run_blocking";
    case WaitKind::io: return "io";
    case WaitKind::other: break;
  }
  return "other";
}

}  // namespace
}  // namespace detail

// ---- live_tasks ---------------------------------------------------------------------------------

const char* to_string(TaskState s) noexcept {
  switch (s) {
    case TaskState::queued: return "queued";
    case TaskState::running: return "running";
    case TaskState::suspended: return "suspended";
  }
  return "?";
}

std::vector<TaskInfo> live_tasks() {
  using namespace detail;
  struct GroupSnap {
    const TaskGroup* group;
    const char* kind;
    std::thread::id owner;
    std::size_t count;
    std::vector<TaskInfo> started;
  };
  std::vector<GroupSnap> groups;
  std::unordered_map<const TaskGroup*, std::size_t> index;
  {
    std::lock_guard<std::mutex> lk(groups_mutex);
    for (LiveGroupEntry* e = groups_head; e; e = e->next_) {
      std::size_t count;
      {
        std::lock_guard<std::mutex> glk(e->group->mutex());
        count = e->group->count_locked();
      }
      if (count == 0) continue;
      const char* kind = e->kind.load(std::memory_order_relaxed);
      if (!kind) kind = e->group->limit() > 0 ? "Pool" : "Group";
      index.emplace(e->group, groups.size());
      groups.push_back(GroupSnap{e->group, kind, e->owner, count, {}});
    }
  }
  const std::int64_t now = coarse_now_ns();
  {
    std::lock_guard<std::mutex> lk(threads_mutex);
    for (ThreadRecord* t = threads_head; t; t = t->next) {
      std::lock_guard<std::mutex> tlk(t->m);
      for (RunnerRecord* r = t->runners; r; r = r->next) {
        const TaskGroup* g = r->group.load(std::memory_order_acquire);
        if (!g) continue;
        const auto it = index.find(g);
        if (it == index.end()) continue;  // started after the groups' snapshot
        const std::uint8_t w = r->wait.load(std::memory_order_relaxed);
        const std::int64_t since = r->since.load(std::memory_order_relaxed);
        TaskInfo info;
        info.thread = t->id;
        info.group = g;
        info.state = w == kNotWaiting ? TaskState::running : TaskState::suspended;
        if (w != kNotWaiting) info.waiting_in = wait_kind_name(w);
        info.in_state_for = std::chrono::nanoseconds(now > since ? now - since : 0);
        info.name = r->name;
        groups[it->second].started.push_back(std::move(info));
      }
    }
  }
  std::vector<TaskInfo> out;
  for (GroupSnap& g : groups) {
    for (TaskInfo& info : g.started) {
      info.group_kind = g.kind;
      out.push_back(std::move(info));
    }
    for (std::size_t i = g.started.size(); i < g.count; ++i) {
      TaskInfo info;
      info.thread = g.owner;
      info.group = g.group;
      info.group_kind = g.kind;
      info.state = TaskState::queued;
      info.in_state_for = {};
      out.push_back(std::move(info));
    }
  }
  return out;
}

void dump_tasks(std::ostream& out) {
  const std::vector<TaskInfo> tasks = live_tasks();
  std::size_t ngroups = 0;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (i == 0 || tasks[i].group != tasks[i - 1].group) ++ngroups;
  std::ostringstream s;  // one write to `out`: lines of concurrent dumps do not interleave
  s << "fiberutils: " << tasks.size() << " live task" << (tasks.size() == 1 ? "" : "s") << " in "
    << ngroups << " group" << (ngroups == 1 ? "" : "s") << "\n";
  for (std::size_t i = 0; i < tasks.size();) {
    std::size_t end = i, n[3] = {0, 0, 0};
    while (end < tasks.size() && tasks[end].group == tasks[i].group)
      ++n[static_cast<int>(tasks[end++].state)];
    s << tasks[i].group_kind << " " << tasks[i].group << ": " << (end - i) << " task"
      << (end - i == 1 ? "" : "s") << " (" << n[1] << " running, " << n[2] << " suspended, "
      << n[0] << " queued)\n";
    for (; i < end; ++i) {
      const TaskInfo& t = tasks[i];
      s << "  " << to_string(t.state);
      if (t.state == TaskState::suspended) s << " in " << t.waiting_in;
      if (t.state != TaskState::queued) {
        const double secs = std::chrono::duration<double>(t.in_state_for).count();
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", secs);
        s << " for " << buf << " s";
      }
      s << " on thread " << t.thread;
      if (!t.name.empty()) s << " \"" << t.name << "\"";
      s << "\n";
    }
  }
  out << s.str() << std::flush;
}

namespace this_task {

void set_name(std::string name) {
  auto* r = detail::runner_record();
  if (!r || !r->current) return;
  {
    std::lock_guard<std::mutex> lk(r->thread->m);
    r->name.swap(name);  // the old name is freed after the lock, with `name`
  }
  r->named = !r->name.empty();
}

}  // namespace this_task

// ---- dump_tasks_on_signal ---------------------------------------------------------------------

namespace {

// The write end of the pipe, for the handler; -1 before the helper starts and after it ends.
std::atomic<int> signal_pipe_write{-1};
static_assert(std::atomic<int>::is_always_lock_free);  // lock-free atomics are async-signal-safe

extern "C" void dump_signal_handler(int) {
  const int saved = errno;
  const int fd = signal_pipe_write.load(std::memory_order_relaxed);
  const char one = 1;
  if (fd >= 0) (void)!::write(fd, &one, 1);  // non-blocking: a burst of signals drops bytes
  errno = saved;
}

// The helper thread that prints a dump for each byte in the pipe; ends at exit (a 0 byte).
class SignalDumper {
 public:
  SignalDumper() {
    if (::pipe2(fds_, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "fiberutils: dump_tasks_on_signal: pipe");
    (void)::fcntl(fds_[1], F_SETFL, O_NONBLOCK);
    try {
      thread_ = std::thread([this] { serve(); });
    } catch (...) {
      ::close(fds_[0]);
      ::close(fds_[1]);
      throw;
    }
    signal_pipe_write.store(fds_[1], std::memory_order_relaxed);
  }
  ~SignalDumper() {
    signal_pipe_write.store(-1, std::memory_order_relaxed);
    const char zero = 0;
    while (::write(fds_[1], &zero, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  SignalDumper(const SignalDumper&) = delete;
  SignalDumper& operator=(const SignalDumper&) = delete;

 private:
  void serve() {
    for (;;) {
      char c;
      const ssize_t n = ::read(fds_[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == 0) return;
      dump_tasks(std::cerr);
    }
  }

  int fds_[2];
  std::thread thread_;
};

}  // namespace

void dump_tasks_on_signal(int signum) {
  if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP)
    throw std::invalid_argument("fiberutils: dump_tasks_on_signal: signal " +
                                std::to_string(signum) + " cannot be caught");
  static SignalDumper dumper;  // the first call starts the helper; thread-safe initialisation
  struct sigaction sa {};
  sa.sa_handler = &dump_signal_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(signum, &sa, nullptr) != 0)
    throw std::system_error(errno, std::generic_category(), "fiberutils: dump_tasks_on_signal: sigaction");
}

}  // namespace fiberutils
