// The checks of test/dist (there with ranks as threads of one process) with ranks as real
// processes over loopback, started through bin/launch: every Gloo collective on 2, 3 and 4
// processes (test/mp/programs/collective_ranks.cpp), and synchronous data parallel and local SGD
// on 2 (test/mp/programs/training_ranks.cpp).
#include <doctest/doctest.h>

#include <iterator>  // std::size
#include <string>
#include <vector>

#include "mp/processes.h"
#include "temporary_files.h"

using ember::test::contains;
using ember::test::Finished;
using ember::test::free_port;
using ember::test::lines_of;
using ember::test::run;

namespace {

const std::string kLaunch = std::string(EMBER_BIN_DIR) + "/launch";
const std::string kProgramDir = std::string(EMBER_MP_PROGRAM_DIR);

const char* const kCollectiveChecks[] = {"all_reduce",   "broadcast",      "all_gather",
                                         "all_gather_v", "reduce_scatter", "send_recv_ring",
                                         "barrier",      "sub_groups",     "payload_bytes"};

// Runs `program args` as `nproc` ranks through bin/launch on a free port, one OpenMP thread
// each (the machine's cores are shared by the ranks).
Finished launch(int nproc, const std::string& program, const std::vector<std::string>& args = {}) {
  std::vector<std::string> command = {kLaunch,
                                      "--nproc",
                                      std::to_string(nproc),
                                      "--master-port",
                                      std::to_string(free_port()),
                                      "--",
                                      kProgramDir + "/" + program};
  command.insert(command.end(), args.begin(), args.end());
  return run(command, 30, 0, SIGTERM, {{"OMP_NUM_THREADS", "1"}});
}

}  // namespace

TEST_CASE("every gloo collective is right on 2 3 and 4 processes") {
  for (int nproc : {2, 3, 4}) {
    INFO("nproc " << nproc);
    const Finished f = launch(nproc, "collective_ranks");
    INFO(f.out, f.err);
    CHECK(f.code == 0);
    CHECK(f.seconds < 15);
    for (int rank = 0; rank < nproc; ++rank)
      for (const char* check : kCollectiveChecks)
        CHECK(contains(f.out, "[rank " + std::to_string(rank) + "] " + check + " ok\n"));
    CHECK(lines_of(f.out).size() == static_cast<size_t>(nproc) * std::size(kCollectiveChecks));
    CHECK(!contains(f.err, "collective_ranks:"));
  }
}

TEST_CASE("data parallel on two processes equals one process on the combined batch") {
  const Finished f = launch(2, "training_ranks", {"data_parallel"});
  INFO(f.out, f.err);
  CHECK(f.code == 0);
  CHECK(f.seconds < 15);
  CHECK(contains(f.out, "[rank 0] data_parallel ok: 5 steps"));
  CHECK(contains(f.out, "[rank 1] data_parallel ok: 5 steps"));
}

TEST_CASE("local SGD with one local step equals sync on two processes") {
  const Finished f = launch(2, "training_ranks", {"local_sgd_1"});
  INFO(f.out, f.err);
  CHECK(f.code == 0);
  CHECK(f.seconds < 15);
  CHECK(contains(f.out, "[rank 0] local_sgd_1 ok: 6 steps"));
  CHECK(contains(f.out, "[rank 1] local_sgd_1 ok: 6 steps"));
}

TEST_CASE("training_ranks rejects an unknown mode") {
  const Finished f = launch(2, "training_ranks", {"no_such_mode"});
  CHECK(f.code == 2);
  CHECK(contains(f.err, "usage: training_ranks data_parallel|local_sgd_1"));
}
