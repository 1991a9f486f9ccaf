#include "apps/common/distributed_training.h"

#include <unistd.h>  // execv, readlink

#include <algorithm>
#include <cerrno>
#include <cstdlib>  // getenv, setenv
#include <cstring>  // strerror
#include <filesystem>

#include "datasets/sampler.h"            // DistributedSampler
#include "dist/communicator.h"           // make_communicator
#include "dist/buffer_sync.h"            // parse_buffer_sync
#include "dist/data_parallel.h"          // DataParallel
#include "dist/distributed_optimizer.h"  // get_distributed_optimizer
#include "dist/model_average.h"          // average_model_into
#include "dist/rendezvous.h"             // rendezvous, rendezvous_in_environment
#include "engine/error.h"
#include "engine/runtime.h"         // cuda_device_count
#include "layers/model_registry.h"  // make_model

namespace ember::app {

using json = nlohmann::json;

namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  EMBER_CHECK(*end == '\0', "the environment variable ", name, "=", value, " is not an integer");
  return static_cast<int>(n);
}

// HOST and PORT of tcp://HOST:PORT.
std::pair<std::string, std::string> host_and_port(const std::string& url) {
  const std::string rest = url.substr(6);
  const size_t colon = rest.rfind(':');
  EMBER_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < rest.size(), "--dist-url ",
              url, ": expected tcp://HOST:PORT");
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

// The folder this program runs from (bin/), where bin/launch lies too.
std::string program_folder(const char* argv0) {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) return std::filesystem::path(std::string(path, static_cast<size_t>(n))).parent_path();
  return std::filesystem::absolute(argv0).parent_path();
}

}  // namespace

void add_distributed_flags(CLI::App& app, DistributedFlags& f, bool imagenet) {
  f.local_steps = imagenet ? 8 : 16;
  f.local_sgd = !imagenet;
  const std::string group = "Distributed";
  app.add_option("--dist-url,--dist_url", f.dist_url,
                 "how the processes meet: tcp://HOST:PORT (rank 0 hosts a store there), env:// "
                 "(MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) or file://PATH; without it, one "
                 "process")
      ->group(group);
  app.add_option("--dist-backend,--dist_backend", f.backend,
                 "nccl (CUDA tensors, one GPU per process) or gloo (CPU tensors; processes may "
                 "share a GPU)")
      ->check(CLI::IsMember({"nccl", "gloo"}))
      ->capture_default_str()
      ->group(group);
  app.add_option("--world-size,--world_size", f.world_size,
                 "processes in all (with --multiprocessing-distributed: nodes)")
      ->group(group);
  app.add_option("--rank", f.rank,
                 "this process's rank (with --multiprocessing-distributed: this node's)")
      ->group(group);
  app.add_flag("--multiprocessing-distributed,--multiprocessing_distributed",
               f.multiprocessing_distributed,
               "start one process per GPU on this node (PyTorch's ImageNet example)")
      ->group(group);
  app.add_option("--nproc", f.nproc, "processes to start on a node without a GPU (with --dist-url)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  if (imagenet) {
    app.add_flag("--local-sgd,--local_sgd", f.local_sgd,
                 "(post-)local SGD instead of synchronous data parallel")
        ->group(group);
  } else {
    app.add_flag("--local-sgd,--local_sgd", f.local_sgd,
                 "(post-)local SGD (the default with several processes, as the seed's cifar.py)")
        ->group(group);
    app.add_flag_callback(
           "--no-local-sgd", [&f] { f.local_sgd = false; },
           "synchronous data parallel (gradients all-reduced) instead of local SGD")
        ->group(group);
  }
  app.add_option("--local-steps,--local_steps", f.local_steps,
                 "local SGD: average the models every N steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  app.add_option("--initial-steps,--initial_steps", f.initial_steps,
                 "local SGD: steps of the initial phase before local steps")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->group(group);
  app.add_option(
         "--initial-step-method,--initial_step_method,--init-step-method,--init_step_method",
         f.initial_step_method,
         "local SGD's initial phase: single_process (rank 0 trains, then broadcasts), "
         "multiple_processes (average after every step) or gradient_allreduce "
         "(synchronous data parallel, the fastest)")
      ->check(CLI::IsMember({"single_process", "multiple_processes", "gradient_allreduce"}))
      ->capture_default_str()
      ->group(group);
  app.add_option("--bn-buffers", f.bn_buffers,
                 "BatchNorm statistics across processes: local, average or broadcast (from rank "
                 "0); default local for local SGD, broadcast for data parallel")
      ->check(CLI::IsMember({"local", "average", "broadcast"}))
      ->group(group);
  app.add_option("--dist-timeout", f.timeout_s,
                 "seconds any collective may take before every process stops with an error")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
}

json distributed_flags_to_json(const DistributedFlags& f) {
  return {{"dist_url", f.dist_url},
          {"dist_backend", f.backend},
          {"world_size", f.world_size},
          {"rank", f.rank},
          {"multiprocessing_distributed", f.multiprocessing_distributed},
          {"nproc", f.nproc},
          {"local_sgd", f.local_sgd},
          {"local_steps", f.local_steps},
          {"initial_steps", f.initial_steps},
          {"initial_step_method", f.initial_step_method},
          {"bn_buffers", f.bn_buffers},
          {"dist_timeout_s", f.timeout_s}};
}

ProcessRole plan_process(const DistributedFlags& f, bool imagenet, int visible_gpus) {
  ProcessRole role;
  role.backend = f.backend;
  if (role.backend == "nccl" && visible_gpus == 0) {
    role.backend = "gloo";
    if (!f.dist_url.empty() || dist::rendezvous_in_environment())
      role.note = "--dist-backend nccl needs a GPU and none is visible: using gloo";
  }
  if (!f.dist_url.empty()) {
    const bool known = f.dist_url.rfind("tcp://", 0) == 0 || f.dist_url.rfind("env://", 0) == 0 ||
                       f.dist_url.rfind("file://", 0) == 0;
    EMBER_CHECK(known, "--dist-url ", f.dist_url,
                ": expected tcp://HOST:PORT, env:// or file://PATH");
  }

  // Started by a launcher: this process is one rank.
  if (dist::rendezvous_in_environment()) {
    role.kind = ProcessRole::Rank;
    role.rank = env_int("RANK", 0);
    role.world_size = env_int("WORLD_SIZE", 1);
    role.local_rank = env_int("LOCAL_RANK", 0);
    role.local_world_size = env_int("LOCAL_WORLD_SIZE", 1);
    role.init_method = f.dist_url.empty() ? "env://" : f.dist_url;
    EMBER_CHECK(role.world_size >= 1 && role.rank >= 0 && role.rank < role.world_size,
                "RANK=", role.rank, " is outside WORLD_SIZE=", role.world_size);
    if (role.world_size == 1)
      role.note += str_cat(role.note.empty() ? "" : "; ",
                           "one process (--nproc 1 on a machine without a GPU): nothing is "
                           "averaged");
    return role;
  }
  if (f.dist_url.empty()) return role;  // one process, no communication

  // This node's processes: one per GPU, or --nproc on a CPU.
  const int per_node = visible_gpus > 0 ? visible_gpus : f.nproc;
  int nodes = 1, node_rank = 0;
  if (imagenet && f.multiprocessing_distributed) {
    nodes = std::max(1, f.world_size);
    node_rank = std::max(0, f.rank);
    EMBER_CHECK(node_rank < nodes, "--rank ", f.rank, " is outside --world-size ", f.world_size,
                " (nodes, with --multiprocessing-distributed)");
  } else if (f.world_size > 1 || f.rank > 0) {
    // A single rank started by hand (--world-size N --rank R without a launcher).
    EMBER_CHECK(f.world_size >= 1 && f.rank >= 0 && f.rank < f.world_size, "--rank ", f.rank,
                " is outside --world-size ", f.world_size);
    role.kind = ProcessRole::Rank;
    role.rank = f.rank;
    role.world_size = f.world_size;
    role.init_method = f.dist_url;
    return role;
  }
  role.kind = ProcessRole::Supervisor;
  role.local_world_size = per_node;
  role.world_size = nodes * per_node;
  role.rank = node_rank * per_node;  // of this node's first process
  return role;
}

int supervise_ranks(const ProcessRole& role, const std::string& dist_url, int argc,
                    const char* const* argv, std::FILE* err) {
  std::string addr = "127.0.0.1", port = "29500";
  if (dist_url.rfind("tcp://", 0) == 0) std::tie(addr, port) = host_and_port(dist_url);
  const std::string launch = program_folder(argv[0]) + "/launch";
  EMBER_CHECK(std::filesystem::exists(launch), "cannot start the ranks: ", launch,
              " is missing (build it with make)");
  const int nodes = role.world_size / role.local_world_size;
  std::vector<std::string> args = {launch,
                                   "--nproc",
                                   std::to_string(role.local_world_size),
                                   "--nnodes",
                                   std::to_string(nodes),
                                   "--node-rank",
                                   std::to_string(role.rank / role.local_world_size),
                                   "--master-addr",
                                   addr,
                                   "--master-port",
                                   port,
                                   "--"};
  args.push_back(std::filesystem::absolute(argv[0]).string());
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  std::fflush(nullptr);
  execv(launch.c_str(), c_args.data());
  std::fprintf(err, "cannot run %s: %s\n", launch.c_str(), std::strerror(errno));
  return 1;
}

DistributedRun start_rank(const ProcessRole& role, const DistributedFlags& f,
                          const TrainOptions& options, int64_t num_classes) {
  DistributedRun run;
  run.options = options;
  TrainOptions& o = run.options;
  // The node's batch and loader threads are divided among its processes.
  const int local = std::max(1, role.local_world_size);
  EMBER_CHECK(o.batch_size >= local, "--batch-size ", o.batch_size, " is the total of this node's ",
              local, " processes: at least one image each");
  o.batch_size /= local;
  o.workers = o.workers / local;
  if (o.device == "auto" || o.device == "cuda") {
    if (cuda_device_count() > 0)
      o.device = str_cat("cuda:", role.local_rank % cuda_device_count());
    else
      o.device = "cpu";
  }

  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  dist::Rendezvous meeting =
      dist::rendezvous(role.init_method, role.rank, role.world_size, timeout);
  dist::CommunicatorOptions comm_options;
  comm_options.timeout = timeout;
  auto comm = dist::make_communicator(role.backend, meeting.store, role.rank, role.world_size,
                                      comm_options, resolve_device(o.device));
  run.communicator = comm;
  run.is_writer = role.rank == 0;

  const bool local_sgd = f.local_sgd;
  const std::string buffers = !f.bn_buffers.empty() ? f.bn_buffers
                              : local_sgd           ? "local"
                                                    : "broadcast";
  const std::string algorithm = local_sgd ? "local_sgd" : "sync";
  TrainerHooks& hooks = run.hooks;
  hooks.write_outputs = run.is_writer;

  // The model's DataParallel (synchronous data parallel, or local SGD's gradient_allreduce
  // initial phase): its hooks average gradient buckets while backward runs.
  auto data_parallel = std::make_shared<std::shared_ptr<dist::DataParallel>>();
  const bool overlapped = !local_sgd || f.initial_step_method == "gradient_allreduce";
  hooks.wrap_optimizer =
      [=](std::shared_ptr<nn::Module> model,
          std::shared_ptr<optim::Optimizer> local_opt) -> std::shared_ptr<optim::Optimizer> {
    std::shared_ptr<dist::OptimizerWrapper> wrapper;
    if (local_sgd) {
      const json args = {{"local_steps", f.local_steps},
                         {"initial_steps", f.initial_steps},
                         {"initial_step_method", f.initial_step_method},
                         {"buffers", buffers}};
      wrapper = dist::get_distributed_optimizer("local_sgd", local_opt, comm, {}, args);
    } else {
      wrapper = dist::get_distributed_optimizer("sync", local_opt, comm, {});
    }
    wrapper->attach_model(model);
    if (overlapped) {
      dist::DataParallelOptions dp;
      dp.buffers = local_sgd ? dist::BufferSync::Local : dist::parse_buffer_sync(buffers);
      *data_parallel = std::make_shared<dist::DataParallel>(model, comm, dp);
      wrapper->attach_data_parallel(*data_parallel);
    }
    return wrapper;
  };
  const int world = role.world_size, rank = role.rank;
  hooks.train_sampler = [world, rank](size_t n, uint64_t seed) {
    return std::make_shared<data::DistributedSampler>(n, world, rank, true, seed);
  };

  // Evaluation: the average of the replicas in a scratch model (the replicas stay as they are).
  auto scratch = std::make_shared<std::shared_ptr<nn::Module>>();
  const std::string arch = o.arch;
  const Device device = resolve_device(o.device);
  hooks.evaluation_model = [=](nn::Module& replica) -> nn::Module& {
    if (!*scratch) {
      nn::ModelOptions model_options;
      model_options.num_classes = num_classes;
      *scratch = nn::make_model(arch, model_options);
      (*scratch)->to(device);  // where the replica and the evaluation batches are
    }
    dist::average_model_into(replica, **scratch, *comm);
    return **scratch;
  };
  hooks.mean_over_processes = [comm, device](double value) {
    // On the model's device: NCCL takes CUDA tensors only.
    Tensor t = full({1}, value, TensorOptions(DType::F64, device));
    comm->all_reduce(t, dist::ReduceOp::Average)->wait();
    return t.item<double>();
  };
  hooks.communication_totals = [comm] {
    const dist::CommStats s = comm->stats();
    return CommunicationTotals{static_cast<double>(s.payload_bytes),
                               static_cast<double>(s.operations), s.seconds};
  };
  hooks.distributed = {
      {"algorithm", algorithm},
      {"backend", role.backend},
      {"world_size", role.world_size},
      {"processes_per_node", role.local_world_size},
      {"init_method", role.init_method},
      {"bn_buffers", buffers},
      {"batch_size_per_process", o.batch_size},
      {"description",
       str_cat(algorithm == "local_sgd"
                   ? str_cat("local SGD (local steps ", f.local_steps, ", initial steps ",
                             f.initial_steps, " ", f.initial_step_method, ")")
                   : std::string("synchronous data parallel"),
               " over ", role.world_size, role.world_size == 1 ? " process (" : " processes (",
               role.backend, "), batch ", o.batch_size, " per process, BatchNorm buffers ",
               buffers)}};
  if (algorithm == "local_sgd") {
    hooks.distributed["local_steps"] = f.local_steps;
    hooks.distributed["initial_steps"] = f.initial_steps;
    hooks.distributed["initial_step_method"] = f.initial_step_method;
  }
  return run;
}

}  // namespace ember::app
