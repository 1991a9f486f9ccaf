// What every distributed optimizer shares (see optimizer_wrapper.h).
#include "dist/optimizer_wrapper.h"

#include <utility>

#include "dist/data_parallel.h"  // DataParallel
#include "dist/model_average.h"  // all_reduce_together
#include "engine/error.h"        // EMBER_CHECK

namespace ember::dist {

OptimizerWrapper::OptimizerWrapper(std::shared_ptr<optim::Optimizer> local_optimizer,
                                   std::shared_ptr<Communicator> communicator)
    : local_(std::move(local_optimizer)), comm_(std::move(communicator)) {
  EMBER_CHECK(local_ != nullptr, "distributed optimizer: the local optimizer is null");
}

optim::OptimizerStateDict OptimizerWrapper::state_dict() const {
  optim::OptimizerStateDict dict = local_->state_dict();
  nlohmann::json state = distributed_state();
  state["algorithm"] = algorithm();
  dict.metadata["distributed"] = state;
  return dict;
}

void OptimizerWrapper::load_state_dict(const optim::OptimizerStateDict& state) {
  const std::string what = algorithm() + ".load_state_dict";
  EMBER_CHECK(state.metadata.is_object() && state.metadata.contains("distributed") &&
                  state.metadata["distributed"].is_object(),
              what, ": the state has no \"distributed\" entry (it was saved by a plain ",
              local_->name(), ", not by the distributed optimizer ", algorithm(), ")");
  const nlohmann::json& distributed = state.metadata["distributed"];
  const std::string saved = distributed.value("algorithm", std::string("?"));
  EMBER_CHECK(saved == algorithm(), what, ": the state was saved by the algorithm ", saved,
              ", not by ", algorithm());
  check_distributed_state(distributed);
  optim::OptimizerStateDict local_state = state;
  local_state.metadata.erase("distributed");
  local_->load_state_dict(local_state);
  set_distributed_state(distributed);
}

void OptimizerWrapper::attach_data_parallel(std::shared_ptr<DataParallel> data_parallel) {
  data_parallel_ = std::move(data_parallel);
}

std::vector<Tensor> OptimizerWrapper::data_parallel_parameters() const {
  std::vector<Tensor> params;
  for (const optim::ParamGroup& group : local_->param_groups())
    if (group.allow_data_parallelism())
      params.insert(params.end(), group.params.begin(), group.params.end());
  return params;
}

std::vector<Tensor> OptimizerWrapper::data_parallel_gradients() const {
  std::vector<Tensor> grads;
  for (const Tensor& p : data_parallel_parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  return grads;
}

void OptimizerWrapper::average_gradients() {
  if (data_parallel_) {
    data_parallel_->finish_gradient_sync();
    return;
  }
  if (!comm_ || comm_->size() == 1) return;
  all_reduce_together(data_parallel_gradients(), *comm_, ReduceOp::Average);
}

void OptimizerWrapper::sync_buffers(BufferSync mode) {
  if (mode == BufferSync::Local || !comm_) return;
  nn::Module* model = model_;
  if (!model && data_parallel_) model = &data_parallel_->module();
  EMBER_CHECK(model != nullptr, algorithm(), ": buffers '", buffer_sync_name(mode),
              "' needs the model: call attach_model(model) (or attach_data_parallel) on the "
              "distributed optimizer");
  sync_model_buffers(*model, *comm_, mode);
}

}  // namespace ember::dist
