// OptimizerWrapper: what every distributed optimizer of ember shares. It IS an optim::Optimizer
// (a training loop uses it exactly like the optimizer it wraps) and forwards everything but
// step() to the local optimizer: param_groups() are the local optimizer's own, so an LR
// scheduler built on the wrapper adjusts the optimizer that steps; zero_grad, name and
// momentum_field are the local optimizer's.
//
// state_dict() is the local optimizer's with one more metadata entry, "distributed": the
// algorithm, its options and its counters, so a resumed run continues the same schedule.
//
// The communicator is null on a rank that is not in the algorithm's group: that rank then just
// steps its local optimizer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>  // the "distributed" state

#include "dist/buffer_sync.h"   // BufferSync
#include "dist/communicator.h"  // Communicator
#include "layers/module.h"      // Module
#include "layers/optimizer.h"   // Optimizer

namespace ember::dist {

class DataParallel;

class OptimizerWrapper : public optim::Optimizer {
 public:
  std::vector<optim::ParamGroup>& param_groups() override { return local_->param_groups(); }
  const std::vector<optim::ParamGroup>& param_groups() const override {
    return local_->param_groups();
  }
  void zero_grad() override { local_->zero_grad(); }
  std::string name() const override { return local_->name(); }
  optim::MomentumField momentum_field() const override { return local_->momentum_field(); }
  optim::OptimizerStateDict state_dict() const override;
  // Checks the "distributed" entry (algorithm, options) before anything changes; an error names
  // the mismatch.
  void load_state_dict(const optim::OptimizerStateDict& state) override;

  // "sync", "local_sgd", "hierarchical_local_sgd".
  virtual std::string algorithm() const = 0;
  // What LR schedulers may also adjust directly; the wrapper's param_groups() are its groups.
  const std::shared_ptr<optim::Optimizer>& local_optimizer() const { return local_; }
  // Null on a rank outside the group.
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }

  // A DataParallel over the model these parameters belong to: the wrapper then lets it average
  // gradients during backward when the algorithm wants averaged gradients.
  virtual void attach_data_parallel(std::shared_ptr<DataParallel> data_parallel);
  // The model, for the buffer options (BatchNorm statistics) of the averaging algorithms. By
  // reference, the model must outlive the optimizer; by shared_ptr, the optimizer keeps it.
  void attach_model(nn::Module& model) { model_ = &model; }
  void attach_model(std::shared_ptr<nn::Module> model) {
    model_ = model.get();
    model_owner_ = std::move(model);
  }

 protected:
  OptimizerWrapper(std::shared_ptr<optim::Optimizer> local_optimizer,
                   std::shared_ptr<Communicator> communicator);

  // The parameters of the groups with allow_data_parallelism (the others are never averaged).
  std::vector<Tensor> data_parallel_parameters() const;
  // Their defined gradients.
  std::vector<Tensor> data_parallel_gradients() const;
  // Averages the data-parallel gradients over `comm_`: through the attached DataParallel when
  // there is one (it has been reducing during backward), else with one all-reduce.
  void average_gradients();
  // Brings the attached model's buffers in line (an error when `mode` is not Local and no model
  // was attached).
  void sync_buffers(BufferSync mode);

  // The algorithm's own part of the state dict: options and counters.
  virtual nlohmann::json distributed_state() const { return nlohmann::json::object(); }
  // Throws ember::Error naming what does not match (nothing has changed yet).
  virtual void check_distributed_state(const nlohmann::json& state) const { (void)state; }
  virtual void set_distributed_state(const nlohmann::json& state) { (void)state; }

  std::shared_ptr<optim::Optimizer> local_;
  std::shared_ptr<Communicator> comm_;
  std::shared_ptr<DataParallel> data_parallel_;
  nn::Module* model_ = nullptr;
  std::shared_ptr<nn::Module> model_owner_;
};

}  // namespace ember::dist
