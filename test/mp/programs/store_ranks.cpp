// One rank of the store tests of test/mp/test_launch.cpp, started by bin/launch: joins through
// the rendezvous (env:// by default, or the init method given), adds rank + 1 to a shared sum,
// waits for every rank, and prints what it saw:
//
//   rank 1 of 3 local 1/3 sum 6
//
//   store_ranks [INIT_METHOD] [--fail-rank R]   rank R exits with code 7 after the rendezvous,
//                                               the others wait for a key that never comes
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dist/rendezvous.h"

using namespace ember::dist;

int main(int argc, char** argv) {
  std::string init_method = "env://";
  int fail_rank = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fail-rank") == 0 && i + 1 < argc)
      fail_rank = std::atoi(argv[++i]);
    else
      init_method = argv[i];
  }
  try {
    Rendezvous r = rendezvous(init_method, -1, -1, std::chrono::seconds(20));
    if (r.rank == fail_rank) {
      std::printf("rank %d failing on purpose\n", r.rank);
      return 7;
    }
    if (fail_rank >= 0) r.store->wait({"never_set"}, std::chrono::seconds(60));
    r.store->add("sum", r.rank + 1);
    r.store->set("done/" + std::to_string(r.rank), to_bytes("1"));
    std::vector<std::string> done;
    for (int i = 0; i < r.world_size; ++i) done.push_back("done/" + std::to_string(i));
    r.store->wait(done);
    std::printf("rank %d of %d local %d/%d sum %s\n", r.rank, r.world_size, r.local_rank,
                r.local_world_size, to_string(r.store->get("sum")).c_str());
    // Rank 0 hosts the store: it leaves last, once every rank has read the sum.
    r.store->add("left", 1);
    if (r.rank == 0)
      while (parse_counter("left", r.store->get("left")) < r.world_size)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_ranks: %s\n", e.what());
    return 1;
  }
  return 0;
}
