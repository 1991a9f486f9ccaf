// (Post-)local SGD: the schedule of local steps and averages (see local_sgd.h).
#include "dist/local_sgd.h"

#include <cstring>  // memcpy
#include <set>
#include <utility>

#include "dist/data_parallel.h"  // DataParallel
#include "dist/model_average.h"  // all_reduce_together, broadcast_together
#include "engine/error.h"        // EMBER_CHECK, Error

namespace ember::dist {

InitialStepMethod parse_initial_step_method(const std::string& name, const std::string& what) {
  if (name == "single_process") return InitialStepMethod::single_process;
  if (name == "multiple_processes") return InitialStepMethod::multiple_processes;
  if (name == "gradient_allreduce") return InitialStepMethod::gradient_allreduce;
  throw Error(str_cat(what, " '", name, "': unknown initial step method; the choices are ",
                      "single_process, multiple_processes and gradient_allreduce"));
}

std::string initial_step_method_name(InitialStepMethod method) {
  switch (method) {
    case InitialStepMethod::single_process:
      return "single_process";
    case InitialStepMethod::multiple_processes:
      return "multiple_processes";
    case InitialStepMethod::gradient_allreduce:
      return "gradient_allreduce";
  }
  return "?";
}

LocalSGDOptimizer::LocalSGDOptimizer(std::shared_ptr<optim::Optimizer> local_optimizer,
                                     std::shared_ptr<Communicator> communicator,
                                     LocalSGDOptions options)
    : OptimizerWrapper(std::move(local_optimizer), std::move(communicator)), options_(options) {
  EMBER_CHECK(options_.local_steps >= 1, "local_sgd: local_steps must be at least 1, got ",
              options_.local_steps);
  EMBER_CHECK(options_.initial_steps >= 0, "local_sgd: initial_steps must be at least 0, got ",
              options_.initial_steps);
  if (comm_ && comm_->size() > 1 && options_.broadcast_initial_parameters)
    broadcast_together(data_parallel_parameters(), *comm_, 0);
}

bool LocalSGDOptimizer::in_gradient_allreduce_phase(int64_t t) const {
  return t <= options_.initial_steps &&
         options_.initial_step_method == InitialStepMethod::gradient_allreduce;
}

void LocalSGDOptimizer::attach_data_parallel(std::shared_ptr<DataParallel> data_parallel) {
  OptimizerWrapper::attach_data_parallel(std::move(data_parallel));
  if (data_parallel_) data_parallel_->set_gradient_sync(in_gradient_allreduce_phase(step_ + 1));
}

void LocalSGDOptimizer::notify(SyncEvent event) {
  if (observer_) observer_(step_, event);
}

void LocalSGDOptimizer::average_parameters() {
  all_reduce_together(data_parallel_parameters(), *comm_, ReduceOp::Average);
  sync_buffers(options_.buffers);
  notify(SyncEvent::ParameterAverage);
}

void LocalSGDOptimizer::broadcast_from_rank0() {
  broadcast_together(data_parallel_parameters(), *comm_, 0);
  broadcast_optimizer_state(*local_, *comm_, 0);
  sync_buffers(options_.buffers);
  notify(SyncEvent::Broadcast);
}

void LocalSGDOptimizer::step() {
  const int64_t t = ++step_;
  if (!comm_ || comm_->size() == 1) {
    local_->step();
    return;
  }
  if (t <= options_.initial_steps) {
    switch (options_.initial_step_method) {
      case InitialStepMethod::multiple_processes:
        local_->step();
        average_parameters();
        break;
      case InitialStepMethod::single_process:
        if (comm_->rank() == 0) local_->step();
        if (t == options_.initial_steps) broadcast_from_rank0();
        break;
      case InitialStepMethod::gradient_allreduce:
        average_gradients();
        notify(SyncEvent::GradientAverage);
        local_->step();
        break;
    }
  } else {
    local_->step();
    if (t % options_.local_steps == 0) average_parameters();
  }
  // The attached DataParallel reduces gradients during the next backward only if the next step
  // wants averaged gradients.
  if (data_parallel_) data_parallel_->set_gradient_sync(in_gradient_allreduce_phase(t + 1));
}

// ---- state ----

nlohmann::json LocalSGDOptimizer::distributed_state() const {
  return {{"step", step_},
          {"local_steps", options_.local_steps},
          {"initial_steps", options_.initial_steps},
          {"initial_step_method", initial_step_method_name(options_.initial_step_method)},
          {"buffers", buffer_sync_name(options_.buffers)}};
}

void LocalSGDOptimizer::check_distributed_state(const nlohmann::json& state) const {
  const std::string what = "local_sgd.load_state_dict";
  EMBER_CHECK(state.contains("step") && state["step"].is_number_integer() &&
                  state["step"].get<int64_t>() >= 0,
              what, ": the state has no step counter (a non-negative integer \"step\")");
  auto same_integer = [&](const char* key, int64_t mine) {
    EMBER_CHECK(state.contains(key) && state[key].is_number_integer(), what,
                ": the state has no integer \"", key, "\"");
    const int64_t saved = state[key].get<int64_t>();
    EMBER_CHECK(saved == mine, what, ": the state was saved with ", key, " ", saved,
                ", this optimizer has ", key, " ", mine,
                " (the averaging schedule would change; resume with the same value)");
  };
  same_integer("local_steps", options_.local_steps);
  same_integer("initial_steps", options_.initial_steps);
  const std::string method = initial_step_method_name(options_.initial_step_method);
  const std::string saved = state.value("initial_step_method", std::string("(none)"));
  EMBER_CHECK(saved == method, what, ": the state was saved with initial_step_method ", saved,
              ", this optimizer has initial_step_method ", method);
}

void LocalSGDOptimizer::set_distributed_state(const nlohmann::json& state) {
  step_ = state["step"].get<int64_t>();
  if (data_parallel_) data_parallel_->set_gradient_sync(in_gradient_allreduce_phase(step_ + 1));
}

// ---- the optimizer state of rank 0, for the single_process warm-up ----

void broadcast_optimizer_state(optim::Optimizer& optimizer, Communicator& comm, int root) {
  if (comm.size() == 1) return;
  Device device = Device::cpu();
  for (const optim::ParamGroup& group : optimizer.param_groups())
    if (!group.params.empty()) device = group.params.front().device();

  // Root describes its state (metadata, tensor names, shapes, dtypes) as JSON text.
  const bool is_root = comm.rank() == root;
  optim::OptimizerStateDict dict;
  std::string description;
  if (is_root) {
    dict = optimizer.state_dict();
    std::set<std::string> private_ids;  // parameters of groups that are never shared
    int64_t index = 0;
    for (const optim::ParamGroup& group : optimizer.param_groups())
      for (size_t k = 0; k < group.params.size(); ++k, ++index)
        if (!group.allow_data_parallelism()) private_ids.insert(std::to_string(index));
    for (const std::string& id : private_ids) {
      if (dict.metadata.contains("state")) dict.metadata["state"].erase(id);
      for (auto it = dict.tensors.begin(); it != dict.tensors.end();)
        it = it->first.rfind("state." + id + ".", 0) == 0 ? dict.tensors.erase(it) : std::next(it);
    }
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& [name, t] : dict.tensors)
      tensors.push_back({{"name", name}, {"shape", t.shape()}, {"dtype", dtype_name(t.dtype())}});
    description = nlohmann::json{{"metadata", dict.metadata}, {"tensors", tensors}}.dump();
  }

  // Its length, then its bytes (in 64-bit words: communicators move numbers, not bytes).
  Tensor length = tensor<int64_t>({static_cast<int64_t>(description.size())}, {1}, device);
  comm.broadcast(length, root)->wait();
  const int64_t bytes = length.cpu().item<int64_t>();
  Tensor words = zeros({(bytes + 7) / 8}, DType::I64);
  if (is_root) std::memcpy(words.data_ptr(), description.data(), description.size());
  words = words.to(device);
  comm.broadcast(words, root)->wait();
  words = words.cpu();
  if (!is_root) description.assign(static_cast<const char*>(words.data_ptr()), bytes);
  const nlohmann::json parsed = nlohmann::json::parse(description);

  // The tensors, packed in one buffer per dtype.
  std::vector<Tensor> tensors;
  for (const nlohmann::json& entry : parsed["tensors"]) {
    const std::string name = entry["name"].get<std::string>();
    if (!is_root) {
      const DType dtype = dtype_from_name(entry["dtype"].get<std::string>().c_str());
      dict.tensors[name] = empty(entry["shape"].get<Shape>(), TensorOptions(dtype, device));
    }
    tensors.push_back(dict.tensors.at(name));
  }
  broadcast_together(tensors, comm, root);
  if (!is_root) {
    dict.metadata = parsed["metadata"];
    optimizer.load_state_dict(dict);
  }
}

}  // namespace ember::dist
