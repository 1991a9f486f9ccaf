// Distributed training in bin/train_cifar and bin/train_imagenet: the seed's flags, its process
// model, and the hooks that turn the single-process Trainer into one rank of many.
//
// Process model (../shared/specs/local_sgd.md, "train_cifar and the seed's cifar.py"):
//   - RANK and WORLD_SIZE in the environment (bin/launch, torchrun, a cluster wrapper): this
//     process is that one rank; it meets the others through --dist-url (default env://).
//   - else --dist-url given: the program starts its own processes on this node, one per visible
//     GPU, or --nproc N CPU processes without a GPU (default 1, and then nothing is averaged),
//     and supervises them as bin/launch does. train_imagenet with --multiprocessing-distributed
//     treats --world-size as the number of nodes and --rank as this node's rank, as PyTorch's
//     ImageNet example does.
//   - else: one process, no communication at all.
// -b/--batch-size and -j/--workers are the totals of this node, divided among its processes.
//
// Algorithm: train_cifar always runs local SGD with several processes (the seed's cifar.py),
// unless --no-local-sgd asks for synchronous data parallel; train_imagenet runs synchronous data
// parallel unless --local-sgd.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "apps/common/trainer.h"  // TrainerHooks, TrainOptions

namespace ember::dist {
class Communicator;
}

namespace ember::app {

struct DistributedFlags {
  std::string dist_url;          // --dist-url: tcp://HOST:PORT, env://, file://PATH; "" = none
  std::string backend = "nccl";  // --dist-backend (the seed's default; gloo on a CPU)
  int world_size = -1;           // --world-size (nodes with --multiprocessing-distributed)
  int rank = -1;                 // --rank (the node's rank with --multiprocessing-distributed)
  bool multiprocessing_distributed = false;
  int nproc = 1;             // --nproc: CPU processes on a node without a GPU
  bool local_sgd = false;    // train_cifar: true unless --no-local-sgd
  int64_t local_steps = 16;  // train_cifar 16, train_imagenet 8 (the seed scripts')
  int64_t initial_steps = 0;
  std::string initial_step_method = "single_process";
  std::string bn_buffers;  // local | average | broadcast; "" = the algorithm's default
  double timeout_s = 300;  // --dist-timeout: every collective's deadline
};

// Adds the distributed flags to a program's command line (the seed's spellings, with dashes
// and with underscores). `imagenet` picks train_imagenet's defaults and meaning of --local-sgd.
void add_distributed_flags(CLI::App& app, DistributedFlags& flags, bool imagenet);
// The flags as summary.json records them.
nlohmann::json distributed_flags_to_json(const DistributedFlags& flags);

// What this process is in the run.
struct ProcessRole {
  enum Kind { Single, Rank, Supervisor } kind = Single;
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string init_method;  // for Rank: how to meet the others
  // A line for the user (e.g. "NCCL needs a GPU: using Gloo"), printed by rank 0 (a supervisor
  // leaves it to its rank 0, which finds the same).
  std::string note;
  std::string backend;  // the backend that will run
};

// Decides, from the flags, the environment and the visible GPUs, what this process does.
// Errors name the flag (--dist-url without a scheme, --rank outside --world-size, ...).
ProcessRole plan_process(const DistributedFlags& flags, bool imagenet, int visible_gpus);

// Supervisor: starts local_world_size copies of this program (argv as given) with RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set, prefixes their output
// lines with "[rank R] ", and returns the first failing child's exit code (stopping the
// others), or 0.
int supervise_ranks(const ProcessRole& role, const std::string& dist_url, int argc,
                    const char* const* argv, std::FILE* err);

// Everything a rank holds for its run: the communicator and the hooks for the Trainer.
struct DistributedRun {
  std::shared_ptr<dist::Communicator> communicator;
  TrainerHooks hooks;
  TrainOptions options;  // the per-process batch size, workers and device
  bool is_writer = false;
};

// Rank: meets the others, builds the communicator and the hooks (the distributed optimizer,
// the sampler of this rank's shard, evaluation of the averaged replicas, rank 0 writes).
// num_classes: the data set's (the scratch model of the averaged replicas is built with it).
DistributedRun start_rank(const ProcessRole& role, const DistributedFlags& flags,
                          const TrainOptions& options, int64_t num_classes);

}  // namespace ember::app
