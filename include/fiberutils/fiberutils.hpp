// SPDX-License-Identifier: Apache-2.0
//
// fiberutils: gevent-style structured concurrency on Boost.Fiber. One include for everything.
#pragma once

#include <fiberutils/cancelled.hpp>
#include <fiberutils/group.hpp>
#include <fiberutils/ordered_yielder.hpp>
#include <fiberutils/pool.hpp>
#include <fiberutils/semaphore.hpp>
#include <fiberutils/stack_size.hpp>
#include <fiberutils/stack_stats.hpp>
#include <fiberutils/this_task.hpp>
#include <fiberutils/version.hpp>
#include <fiberutils/yielder.hpp>
