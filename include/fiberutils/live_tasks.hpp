// SPDX-License-Identifier: Apache-2.0
//
// fu::live_tasks(), fu::dump_tasks(), fu::dump_tasks_on_signal(): see every unfinished task of
// the process, as Go's goroutine dump, gevent's print_run_info or tokio-console show them. For a
// program that hangs: which tasks are left, of which group, and what each one waits in.
//
// A task is in one of three states:
//   queued     spawned, not started: waiting for a slot (Pool, a stream's limit), for room in a
//              stream's buffer, or for a runner. It holds no stack, and fiberutils keeps nothing
//              per queued task but its callable: a dump reports queued tasks from their group's
//              count, with no name, `thread` the group's creating thread, `in_state_for` zero.
//   running    started and not parked: on its thread's CPU now, or ready to run, or suspended in
//              a wait that is not fiberutils' (a raw Boost.Fiber mutex, this_task::yield()).
//   suspended  parked in one of fiberutils' waits; `waiting_in` names it.
// Tasks of every thread are reported, fu::Workers' threads included. Fibers that fiberutils did
// not start (main(), a raw boost::fibers::fiber) are not tasks and are not reported.
//
// Cost when nobody asks: no lock, no allocation and no clock read per task. A runner fiber
// (reused for many tasks) is registered once; a task's start and end and each park store a few
// words into its runner's record, and each park reads CLOCK_MONOTONIC_COARSE (a park costs a
// fiber switch already). A task's start is stamped with its thread's last park time instead of
// a clock read, so a running task's `in_state_for` may include the run time of tasks that ran
// before it on its thread without ever parking. The spawn site is not captured: spawn(f,
// args...) is variadic, so a defaulted std::source_location parameter cannot follow, and every
// spawn would pay for it; `spawned_at` is always "". A dump locks, one at a time, each thread's
// runner list and each group's mutex for a moment (the threads it runs on never wait for longer).
//
// Consistency: a dump is a sequence of per-thread and per-group snapshots, not one atomic
// snapshot of the process: a task that changes state while the dump runs may show in its old or
// its new state, and a group's queued count may be off by the tasks that start meanwhile. A scene
// that stands still (the hung program this is for) is reported exactly.
//
// Example:
//   fu::dump_tasks_on_signal(SIGUSR1);   // then `kill -USR1 <pid>` prints the dump to stderr
//   g.spawn([url] { fu::this_task::set_name("fetch " + url); fetch(url); });
//   fu::dump_tasks(std::cerr);
// prints:
//   fiberutils: 3 live tasks in 1 group
//   Group 0x7ffd5c3e0a40: 3 tasks (1 running, 1 suspended, 1 queued)
//     suspended in semaphore for 1.002 s on thread 140245 "fetch http://a"
//     ...
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <thread>
#include <vector>

namespace fiberutils {

enum class TaskState { queued, running, suspended };

struct TaskInfo {
  std::thread::id thread;        // where it runs (queued: the thread that made its group)
  const void* group;             // identity of its group, pool or stream (not the object's address)
  std::string group_kind;        // "Group", "Pool", "Yielder", "OrderedYielder"
  TaskState state;               // see the top of this header
  std::string waiting_in;        // when suspended: "join", "sleep", "semaphore", "stream", "put",
                                 // "run_blocking", "io", or "other" (a raw park); else ""
  std::chrono::steady_clock::duration in_state_for;  // to a coarse tick (1-4 ms); queued: zero;
                                                     // running: see "Cost" above
  std::string name;              // this_task::set_name(), or ""
  std::string spawned_at;        // always "": not captured (see the top of this header)
};

// "queued", "running", "suspended".
const char* to_string(TaskState s) noexcept;

// live_tasks() returns every unfinished task of every thread, grouped by group (started tasks
// first within a group, then its queued ones). Never suspends; blocks the thread only for the
// moments it holds the locks described above. Thread-safe: any thread, fiber or not, inside a
// task too (the caller is reported as running).
std::vector<TaskInfo> live_tasks();

// dump_tasks(out) writes live_tasks() to `out`, a header line and then, per group, a line for the
// group with its counts and one line per task. Same rules as live_tasks(); the write itself is
// an ordinary ostream write (it blocks the thread as `out` does).
void dump_tasks(std::ostream& out);

// dump_tasks_on_signal(signum) makes signal `signum` print dump_tasks() to stderr, from a helper
// thread: the handler only write()s a byte into a pipe (async-signal-safe), whichever thread the
// signal lands on. The helper thread starts with the first call and ends at exit. Calling it again
// adds another signal. Throws std::invalid_argument for a signal that cannot be caught
// (SIGKILL, SIGSTOP, out of range) and std::system_error when the pipe, the thread or sigaction
// fails. Replaces the signal's previous handler. Never suspends; thread-safe.
void dump_tasks_on_signal(int signum);

namespace this_task {

// set_name(name) names the calling task in live_tasks() and dump_tasks() until it ends; a later
// call renames it. Outside a task it does nothing. Never suspends; it locks the thread's runner
// list for a moment (a dump may read the name from another thread).
void set_name(std::string name);

}  // namespace this_task

}  // namespace fiberutils
