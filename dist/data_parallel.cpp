// Synchronous data parallel: gradient buckets all-reduced during backward (see
// data_parallel.h).
#include "dist/data_parallel.h"

#include <algorithm>
#include <map>
#include <utility>

#include "dist/model_average.h"  // broadcast_together
#include "engine/autograd.h"     // grad_mode_enabled
#include "engine/error.h"        // EMBER_CHECK, Error

namespace ember::dist {

DataParallel::DataParallel(std::shared_ptr<nn::Module> model,
                           std::shared_ptr<Communicator> communicator, DataParallelOptions options)
    : model_(std::move(model)), comm_(std::move(communicator)), options_(options) {
  EMBER_CHECK(model_ != nullptr && comm_ != nullptr,
              "DataParallel: the model or the communicator is null");
  EMBER_CHECK(options_.bucket_bytes > 0, "DataParallel: bucket_bytes must be positive, got ",
              options_.bucket_bytes);
  const nn::ParameterLayout& layout =
      model_->parameter_layout() ? *model_->parameter_layout() : model_->flatten_parameters();

  // Buckets from the end of the registration order: consecutive slots of one flat buffer, each
  // bucket closed once it holds bucket_bytes (or when the next slot lies in another buffer).
  const std::vector<nn::ParameterSlot>& slots = layout.slots();
  bucket_of_slot_.assign(slots.size(), -1);
  int64_t bucket_bytes = 0;
  for (int s = static_cast<int>(slots.size()) - 1; s >= 0; --s) {
    const nn::ParameterSlot& slot = slots[s];
    const bool full = bucket_bytes >= options_.bucket_bytes;
    if (buckets_.empty() || full || buckets_.back().buffer != slot.buffer) {
      buckets_.push_back({slot.buffer, slot.offset + slot.numel, 0, {}});
      bucket_bytes = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket.offset = slot.offset;  // walking backwards: each slot starts the range anew
    bucket.numel += slot.numel;
    bucket.slots.push_back(s);
    bucket_of_slot_[s] = static_cast<int>(buckets_.size()) - 1;
    bucket_bytes +=
        slot.numel * static_cast<int64_t>(dtype_size(layout.buffers()[slot.buffer].dtype));
  }
  reset_step();

  // Every replica starts from rank 0's parameters and buffers.
  std::vector<Tensor> params;
  for (const nn::FlatBuffer& b : layout.buffers()) params.push_back(b.params);
  if (comm_->size() > 1) broadcast_together(params, *comm_, 0);
  sync_model_buffers(*model_, *comm_, options_.buffers);

  std::map<std::string, int> slot_by_name;
  for (size_t s = 0; s < slots.size(); ++s) slot_by_name[slots[s].name] = static_cast<int>(s);
  grad_hook_ = model_->register_grad_ready_hook(
      [this, slot_by_name](const std::string& name, const Tensor&) {
        on_gradient_ready(slot_by_name.at(name));
      });
  forward_hook_ = model_->register_forward_pre_hook([this](nn::Module& module, const Tensor&) {
    if (enabled_ && module.is_training() && grad_mode_enabled() && !buffers_synced_) sync_buffers();
    buffers_synced_ = false;
  });
}

DataParallel::DataParallel(nn::Module& model, std::shared_ptr<Communicator> communicator,
                           DataParallelOptions options)
    : DataParallel(std::shared_ptr<nn::Module>(&model, [](nn::Module*) {}), std::move(communicator),
                   options) {}

DataParallel::~DataParallel() {
  model_->remove_hook(grad_hook_);
  model_->remove_hook(forward_hook_);
  for (WorkHandle& work : works_) {
    if (!work) continue;
    try {
      work->wait();  // the buffers it writes must outlive it
    } catch (const std::exception&) {
      // A failed step already reported its error; a destructor must not throw.
    }
  }
}

void DataParallel::sync_buffers() {
  sync_model_buffers(*model_, *comm_, options_.buffers);
  buffers_synced_ = true;
}

void DataParallel::record(TraceEvent::Kind kind, int bucket) {
  trace_.push_back({kind, bucket, std::chrono::steady_clock::now()});
}

void DataParallel::reset_step() {
  step_begun_ = false;
  slot_ready_.assign(bucket_of_slot_.size(), 0);
  bucket_pending_.clear();
  for (const Bucket& b : buckets_) bucket_pending_.push_back(static_cast<int>(b.slots.size()));
  slots_ready_ = 0;
  next_bucket_ = 0;
  works_.assign(buckets_.size(), nullptr);
}

void DataParallel::begin_step_if_needed() {
  if (step_begun_) return;
  step_begun_ = true;
  trace_.clear();
}

void DataParallel::start_bucket(size_t b) {
  const Bucket& bucket = buckets_[b];
  const nn::FlatBuffer& buffer = model_->parameter_layout()->buffers()[bucket.buffer];
  record(TraceEvent::BucketStarted, static_cast<int>(b));
  works_[b] =
      comm_->all_reduce(buffer.grads.narrow(0, bucket.offset, bucket.numel), ReduceOp::Average);
}

void DataParallel::on_gradient_ready(int slot) {
  if (!syncing()) return;
  begin_step_if_needed();
  if (slot_ready_[slot]) {
    const std::string& name = model_->parameter_layout()->slots()[slot].name;
    throw Error(str_cat("DataParallel: parameter '", name,
                        "' received its gradient twice before finish_gradient_sync (two backward "
                        "passes in one step: use no_sync() for all but the last)"));
  }
  slot_ready_[slot] = 1;
  ++slots_ready_;
  --bucket_pending_[bucket_of_slot_[slot]];
  // Start every bucket that is complete and whose predecessors have started: the same order
  // on every rank, whatever order the gradients came in.
  while (next_bucket_ < buckets_.size() && bucket_pending_[next_bucket_] == 0)
    start_bucket(next_bucket_++);
  if (slots_ready_ == static_cast<int>(slot_ready_.size())) record(TraceEvent::GradientsReady);
}

void DataParallel::finish_gradient_sync() {
  if (!syncing()) {
    reset_step();
    return;
  }
  begin_step_if_needed();
  // Buckets with parameters that got no gradient: their slots hold zero_grad's zeros.
  while (next_bucket_ < buckets_.size()) start_bucket(next_bucket_++);
  std::vector<WorkHandle> works = std::move(works_);
  reset_step();  // whatever happens below, the next step starts clean
  for (WorkHandle& work : works) work->wait();
  record(TraceEvent::SyncFinished);
}

// ---- the "sync" algorithm ----

GradientAllReduceOptimizer::GradientAllReduceOptimizer(
    std::shared_ptr<optim::Optimizer> local_optimizer, std::shared_ptr<Communicator> communicator,
    std::shared_ptr<DataParallel> data_parallel)
    : OptimizerWrapper(std::move(local_optimizer), std::move(communicator)) {
  if (data_parallel) {
    attach_data_parallel(std::move(data_parallel));
    return;
  }
  // Equal gradients keep equal replicas equal: start them equal (as DataParallel does).
  if (comm_ && comm_->size() > 1) broadcast_together(data_parallel_parameters(), *comm_, 0);
}

void GradientAllReduceOptimizer::step() {
  average_gradients();
  local_->step();
}

}  // namespace ember::dist
