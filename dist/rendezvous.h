// The rendezvous: how the processes of one job find each other and learn their ranks. It
// builds the job's store from an init method (the --dist-url flag) and checks that every rank
// joined.
//
//   env://             MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (and LOCAL_RANK,
//                      LOCAL_WORLD_SIZE) from the environment, as bin/launch, torchrun and
//                      SLURM wrappers set them; a TcpStore that rank 0 hosts
//   tcp://HOST:PORT    rank and world size given by the program; a TcpStore that rank 0 hosts
//   file://PATH        rank and world size given; a FileStore at PATH (a fresh file per run)
//
//   Rendezvous r = rendezvous("env://", -1, -1, std::chrono::seconds(300));
//   auto comm = make_communicator("gloo", r.store, r.rank, r.world_size);
//
// LOCAL_RANK and LOCAL_WORLD_SIZE (which GPU a process takes) default to the rank and the world
// size (one node) when unset. The TcpStore's token comes from EMBER_DIST_TOKEN when set.
// With tcp:// and env://, rank 0's process hosts the store: it must not end (or drop its store)
// while other ranks still use it, so a job ends with a barrier.
#pragma once

#include <memory>
#include <string>

#include "dist/store.h"  // Store, Milliseconds

namespace ember::dist {

struct Rendezvous {
  std::shared_ptr<Store> store;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string init_method;
};

// Builds the store named by `init_method` and waits (up to `timeout`) until all `world_size`
// ranks have joined; rank and world_size of -1 mean "from the environment" (RANK, WORLD_SIZE).
// Errors name the variable, the URL part or the ranks that did not join.
Rendezvous rendezvous(const std::string& init_method, int rank, int world_size,
                      Milliseconds timeout);

// Whether a launcher (bin/launch, torchrun, a cluster wrapper) started this process as one rank:
// RANK and WORLD_SIZE are set.
bool rendezvous_in_environment();

// The parts of an init method, before any store is made (exposed for tests and for programs
// that print what they will do).
struct InitMethod {
  std::string scheme;  // "env", "tcp" or "file"
  std::string host;    // env and tcp
  int port = 0;        // env and tcp
  std::string path;    // file
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
};
InitMethod parse_init_method(const std::string& init_method, int rank, int world_size);

}  // namespace ember::dist
