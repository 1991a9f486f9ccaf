// get_distributed_optimizer: one entry point to ember's distributed optimizers, the seed's
// interface. What it returns is used exactly like the local optimizer it wraps:
//
//   auto opt = dist::get_distributed_optimizer("local_sgd", local_optimizer, comm, {},
//                                              {{"local_steps", 4}, {"initial_steps", 100}});
//   opt->zero_grad(); loss.backward(); opt->step();
//
// Algorithms and their options (JSON numbers or strings of numbers; unknown keys are errors):
//   "sync"                    gradients averaged before every step (synchronous SGD); no
//                             options. With a DataParallel attached (attach_data_parallel) the
//                             averaging overlaps backward.
//   "local_sgd"               local_steps (4), initial_steps (0), initial_step_method
//                             (single_process | multiple_processes | gradient_allreduce; also
//                             spelled init_step_method; default single_process), buffers
//                             (local | average | broadcast; local), broadcast_initial_parameters
//                             (true). See dist/local_sgd.h for the schedule.
//   "hierarchical_local_sgd"  local_sync_freq (4), global_sync_freq (4), group_size or groups,
//                             buffers, broadcast_initial_parameters. See
//                             dist/hierarchical_local_sgd.h.
//
// `model` (optional) is what the buffer options act on (attach_model); `data_parallel`
// (optional) a DataParallel over it, which then averages gradients during backward whenever the
// algorithm wants averaged gradients (sync; local_sgd's gradient_allreduce warm-up).
//
// `group` lists the ranks of `communicator` that take part (empty: all). When it is not all of
// them, a sub-communicator is made with new_group, which every rank of `communicator` must
// call: build the optimizer on every rank. A rank outside the group gets a wrapper that just
// steps its local optimizer.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>  // options

#include "dist/communicator.h"            // Communicator
#include "dist/data_parallel.h"           // GradientAllReduceOptimizer
#include "dist/hierarchical_local_sgd.h"  // HierarchicalLocalSGDOptimizer, its options
#include "dist/local_sgd.h"               // LocalSGDOptimizer, LocalSGDOptions
#include "layers/optimizer.h"             // Optimizer

namespace ember::dist {

// The options of "sync" (there are none yet).
struct SyncOptions {};

// The primary form: explicit communicator, options as JSON (what a program's flags become).
std::shared_ptr<OptimizerWrapper> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const nlohmann::json& options = nlohmann::json::object(), nn::Module* model = nullptr,
    std::shared_ptr<DataParallel> data_parallel = nullptr);

// Typed options for C++ callers; `algorithm` must name the algorithm the options belong to.
std::shared_ptr<LocalSGDOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const LocalSGDOptions& options, nn::Module* model = nullptr,
    std::shared_ptr<DataParallel> data_parallel = nullptr);
std::shared_ptr<HierarchicalLocalSGDOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group,
    const HierarchicalLocalSGDOptions& options, nn::Module* model = nullptr,
    std::shared_ptr<DataParallel> data_parallel = nullptr);
std::shared_ptr<GradientAllReduceOptimizer> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer,
    std::shared_ptr<Communicator> communicator, std::vector<int> group, const SyncOptions& options,
    nn::Module* model = nullptr, std::shared_ptr<DataParallel> data_parallel = nullptr);

// The seed's form: (algorithm, local_optimizer, rank, world_size, group, arg_dict), with the
// arguments as strings ({"local_steps": "4", "init_step_method": "single_process"}). It uses
// the default communicator, and checks rank and world_size against it.
std::shared_ptr<OptimizerWrapper> get_distributed_optimizer(
    const std::string& algorithm, std::shared_ptr<optim::Optimizer> local_optimizer, int rank,
    int world_size, std::vector<int> group, const std::map<std::string, std::string>& arg_dict);

// The default communicator: a process-wide global that exists ONLY for the seed-compatible form
// above (whose signature has no communicator). Everything else in ember takes the communicator
// as an argument.
void set_default_communicator(std::shared_ptr<Communicator> communicator);
std::shared_ptr<Communicator> default_communicator();  // null when none was set

// The names get_distributed_optimizer knows.
std::vector<std::string> distributed_algorithms();

// Options from JSON; unknown keys and bad values are errors naming the key and the choices.
LocalSGDOptions local_sgd_options(const nlohmann::json& options);
HierarchicalLocalSGDOptions hierarchical_local_sgd_options(const nlohmann::json& options);

}  // namespace ember::dist
