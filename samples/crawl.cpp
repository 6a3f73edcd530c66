// SPDX-License-Identifier: Apache-2.0
//
// A crawler as an ordered pipeline: at most 4 fetches at once; each page's task spawns tasks for
// its links (nested spawning into the same stream) and returns its page. Results come in the
// order of the spawn() calls, as soon as they and everything spawned before them are ready: the
// root, its links in link order, then each page's links together, in link order. Fetching is
// simulated with sleeps of random length.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fiberutils/fiberutils.hpp>

namespace fu = fiberutils;
using namespace std::chrono_literals;

namespace {
struct Page {
  std::string url;
  int depth;
};

// Fetches in progress now and at most, to check the limit of 4 (one thread: plain ints do).
int fetching = 0, most_fetching = 0;

std::vector<std::string> fetch_links(const std::string& url, int depth) {
  thread_local std::mt19937 rng{std::random_device{}()};
  most_fetching = std::max(most_fetching, ++fetching);
  fu::this_task::sleep_for(std::chrono::milliseconds(10 + rng() % 40));  // the "download"
  --fetching;
  if (depth == 2) return {};
  return {url + "/a", url + "/b", url + "/c"};
}

// [crawl]
Page crawl(fu::OrderedYielder<Page>& out, std::string url, int depth) {
  for (std::string& link : fetch_links(url, depth))  // a link's place is taken here
    out.spawn(crawl, std::ref(out), std::move(link), depth + 1);
  return Page{url, depth};  // yielded in this task's place, taken when it was spawned
}

fu::OrderedYielder<Page> crawl_site(const std::string& root) {
  return fu::ordered_yielding<Page>(4, [root](fu::OrderedYielder<Page>& out) {
    out.spawn(crawl, std::ref(out), root, 0);
  });
}
// [crawl]
}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> order;
  for (const Page& page : crawl_site("https://example.org")) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start).count();
    std::printf("%5lld ms  %*s%s\n", static_cast<long long>(ms), 2 * page.depth, "", page.url.c_str());
    order.push_back(page.url);
  }
  // 1 root + 3 links + 9 links of links; every page's links come together, in link order.
  bool ok = order.size() == 13 && order[0] == "https://example.org";
  for (std::size_t first = 1; ok && first < order.size(); first += 3) {
    const std::string parent = order[first].substr(0, order[first].size() - 2);
    ok = order[first] == parent + "/a" && order[first + 1] == parent + "/b" &&
         order[first + 2] == parent + "/c";
  }
  std::printf("%zu pages, %s; at most %d fetches at once\n", order.size(),
              ok ? "in crawl order" : "WRONG ORDER", most_fetching);
  return ok && most_fetching >= 1 && most_fetching <= 4 ? 0 : 1;
}
