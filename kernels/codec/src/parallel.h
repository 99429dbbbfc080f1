// A minimal fork-join helper: runs fn(begin, end) over [0, n) in blocks on a few threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace covenant {

inline unsigned worker_count(uint32_t wanted) {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return wanted ? std::min<unsigned>(wanted, 256) : hw;
}

template <class Fn>
void parallel_for(uint64_t n, uint64_t block, unsigned threads, Fn fn) {
  if (n == 0) return;
  uint64_t blocks = (n + block - 1) / block;
  unsigned t = unsigned(std::min<uint64_t>(threads, blocks));
  std::atomic<uint64_t> next{0};
  auto run = [&] {
    for (uint64_t b; (b = next.fetch_add(1)) < blocks;) fn(b * block, std::min(n, (b + 1) * block));
  };
  if (t <= 1) return run();
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (unsigned i = 1; i < t; ++i) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
}

// Deterministic sum of per-chunk partials: sequential within groups of kSumGroup chunks,
// then sequential over the group totals (the order every backend uses).
inline double grouped_sum(const double* partial, uint64_t n, uint64_t stride = 1) {
  double total = 0.0;
  for (uint64_t g = 0; g < n; g += 256) {
    double s = 0.0;
    for (uint64_t c = g; c < std::min(n, g + 256); ++c) s += partial[c * stride];
    total += s;
  }
  return total;
}

}  // namespace covenant
