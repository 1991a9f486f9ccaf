// bin/bench_allreduce: the bandwidth of the Gloo communicator's all-reduce over loopback, with
// the ranks as threads of this process (meeting through a MemoryStore). Figures, never a
// pass/fail.
//
// For each size (f32 buffers, 1 MB to 256 MB by default) it prints the time of one all-reduce
// and two bandwidths in MB/s:
//   algorithm bandwidth  size / time
//   bus bandwidth        size / time * 2 (n - 1) / n: what each rank's link carries in a ring
//                        all-reduce (reduce-scatter then all-gather), comparable across n.
// On loopback the ranks share the machine's cores and memory, so this measures the software's
// cost (copies, reduction, the TCP stack) more than a network.
//
//   bin/bench_allreduce                       # 2 ranks, 1 MB .. 256 MB
//   bin/bench_allreduce --ranks 4 --max-mb 64
#include <CLI/CLI.hpp>  // command-line flags

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "dist/gloo_communicator.h"  // make_gloo_communicator
#include "dist/store.h"              // MemoryStore
#include "engine/ember.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app("Gloo all-reduce bandwidth on loopback, ranks as threads");
  int ranks = 2;
  int min_mb = 1, max_mb = 256;
  double seconds_per_size = 1.0;
  app.add_option("--ranks", ranks, "number of ranks (threads)")->check(CLI::Range(2, 16));
  app.add_option("--min-mb", min_mb, "smallest buffer in MB")->check(CLI::PositiveNumber);
  app.add_option("--max-mb", max_mb, "largest buffer in MB")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds_per_size, "time spent on each size (at least 2 runs)");
  CLI11_PARSE(app, argc, argv);

  auto store = std::make_shared<dist::MemoryStore>();
  std::vector<std::shared_ptr<dist::Communicator>> comms(static_cast<size_t>(ranks));
  {
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
      threads.emplace_back([&, r] { comms[r] = dist::make_gloo_communicator(store, r, ranks); });
    for (auto& thread : threads) thread.join();
  }

  std::printf("gloo all-reduce (sum, f32), %d ranks as threads over loopback\n", ranks);
  std::printf("%10s %8s %12s %14s %14s\n", "size MB", "runs", "ms/op", "algo MB/s", "bus MB/s");
  for (int mb = min_mb; mb <= max_mb; mb *= 2) {
    const int64_t count = int64_t(mb) * 1024 * 1024 / 4;
    std::vector<Tensor> buffers;
    for (int r = 0; r < ranks; ++r) buffers.push_back(full({count}, 1.0, DType::F32));
    // Every rank runs the same number of all-reduces: rank 0 decides after a first timed one.
    auto one_round = [&] {
      std::vector<dist::WorkHandle> works;
      for (int r = 0; r < ranks; ++r) works.push_back(comms[r]->all_reduce(buffers[r]));
      for (auto& work : works) work->wait();
    };
    one_round();  // warm-up: first touch of the memory, socket buffers
    const auto start = std::chrono::steady_clock::now();
    one_round();
    const double first =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int runs = std::max(2, static_cast<int>(seconds_per_size / std::max(first, 1e-6)));
    for (int i = 1; i < runs; ++i) one_round();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / runs;
    const double bytes_mb = static_cast<double>(count) * 4 / (1024.0 * 1024.0);
    const double algo = bytes_mb / seconds;
    const double bus = algo * 2.0 * (ranks - 1) / ranks;
    std::printf("%10d %8d %12.2f %14.1f %14.1f\n", mb, runs, seconds * 1e3, algo, bus);
    std::fflush(stdout);
  }
  return 0;
}
