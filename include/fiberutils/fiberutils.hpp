// SPDX-License-Identifier: Apache-2.0
//
// fiberutils: gevent-style structured concurrency on Boost.Fiber. One include for everything.
//
// Each header says what of it suspends the calling fiber, what blocks the thread (nothing, beyond
// short internal critical sections) and what is thread-safe; fu::this_task's header defines
// those words. In short: spawn never blocks; join, semaphore acquisition, sleeps and stream
// iteration suspend only the calling fiber; every type may be used from any thread.
#pragma once

#include <fiberutils/cancelled.hpp>
#include <fiberutils/deadline.hpp>
#include <fiberutils/fail_fast.hpp>
#include <fiberutils/group.hpp>
#include <fiberutils/live_tasks.hpp>
#include <fiberutils/ordered_yielder.hpp>
#include <fiberutils/pool.hpp>
#include <fiberutils/run_blocking.hpp>
#include <fiberutils/semaphore.hpp>
#include <fiberutils/stack_size.hpp>
#include <fiberutils/stack_stats.hpp>
#include <fiberutils/this_task.hpp>
#include <fiberutils/version.hpp>
#include <fiberutils/workers.hpp>
#include <fiberutils/yielder.hpp>
