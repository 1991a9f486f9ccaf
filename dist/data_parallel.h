// Synchronous data parallel (PyTorch's DistributedDataParallel): every rank holds a replica of
// the model, computes gradients on its share of the batch, and the gradients are averaged over
// the ranks before the optimizer step, so every replica takes the same step.
//
//   dist::DataParallel dp(model, comm);           // broadcasts rank 0's parameters and buffers
//   loss = criterion(model(x), y);                // buffers synced before a training forward
//   loss.backward();                              // buckets all-reduced while backward runs
//   dp.finish_gradient_sync();                    // the rest, then waits: gradients averaged
//   optimizer.step();
//
// Buckets. The gradients live in the model's flat gradient buffer (layers/flat_parameters.h).
// Backward produces them roughly in reverse registration order, so buckets are contiguous
// ranges of that buffer taken from its END, about `bucket_bytes` each:
//
//   grads buffer:  [ conv1.w conv1.b | fc1.w fc1.b | fc2.w fc2.b ]
//                    bucket 2          bucket 1      bucket 0
//
// A post-accumulate-grad hook on every parameter counts down its bucket; when a bucket's last
// gradient is final its all-reduce starts asynchronously, overlapping the rest of backward.
// Buckets start strictly in bucket order on every rank (one that is ready early waits for its
// predecessors), so all ranks issue the same collectives in the same order, as a communicator
// requires. Parameters that got no gradient this step keep the zeros zero_grad left, so
// finish_gradient_sync simply starts their buckets too: nothing hangs, nothing is corrupted.
//
// BatchNorm buffers (running statistics): BufferSync::Broadcast (rank 0's, before every
// training forward, as DDP does), Average (the ranks' mean, at the same moment) or Local.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/buffer_sync.h"        // BufferSync
#include "dist/communicator.h"       // Communicator, WorkHandle
#include "dist/optimizer_wrapper.h"  // OptimizerWrapper
#include "layers/module.h"           // Module

namespace ember::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;  // as DDP's bucket_cap_mb = 25
  BufferSync buffers = BufferSync::Broadcast;
};

class DataParallel {
 public:
  // Flattens the model's parameters if they are not yet flat, broadcasts rank 0's parameters
  // and (unless buffers is Local) buffers, and installs the hooks. Every rank of `comm` calls it.
  DataParallel(std::shared_ptr<nn::Module> model, std::shared_ptr<Communicator> communicator,
               DataParallelOptions options = {});
  // For a model held elsewhere (a training loop's): it must outlive the DataParallel.
  DataParallel(nn::Module& model, std::shared_ptr<Communicator> communicator,
               DataParallelOptions options = {});
  ~DataParallel();  // removes the hooks
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() { return *model_; }
  Communicator& communicator() { return *comm_; }
  const DataParallelOptions& options() const { return options_; }

  // Starts the buckets not yet started (those whose parameters got no gradient), waits for
  // every bucket and resets for the next step. Call it after backward, before the step. Does
  // nothing but reset while gradient sync is off (no_sync, set_gradient_sync(false)).
  void finish_gradient_sync();

  // Under the returned guard the hooks do not reduce: gradients accumulate locally over several
  // backward passes, and the first synced backward after it reduces the accumulated sum.
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(DataParallel* owner) : owner_(owner) { ++owner_->no_sync_depth_; }
    NoSyncGuard(NoSyncGuard&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(NoSyncGuard&&) = delete;
    ~NoSyncGuard() {
      if (owner_) --owner_->no_sync_depth_;
    }

   private:
    DataParallel* owner_;
  };
  [[nodiscard]] NoSyncGuard no_sync() { return NoSyncGuard(this); }

  // Turns the whole machinery off or on until changed again: while off, DataParallel issues no
  // collective at all (no gradient buckets, no buffer sync). How local SGD uses one DataParallel
  // for its gradient_allreduce warm-up and then trains locally.
  void set_gradient_sync(bool enabled) { enabled_ = enabled; }
  bool gradient_sync_enabled() const { return enabled_; }

  // Brings the buffers in line now (options.buffers). A forward pre-hook calls it before every
  // training forward, unless it was called explicitly since the last forward (a training loop
  // that calls it itself does not pay twice).
  void sync_buffers();

  // A contiguous range of one flat gradient buffer, and the parameters (layout slots) in it.
  struct Bucket {
    int buffer = 0;
    int64_t offset = 0;
    int64_t numel = 0;
    std::vector<int> slots;
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

  // The timeline of the last synced step: when each bucket's all-reduce started, when the last
  // parameter's gradient became final (the end of backward's work on parameters) and when
  // finish_gradient_sync had waited for everything. Cleared when the next step's first
  // gradient arrives.
  struct TraceEvent {
    enum Kind { BucketStarted, GradientsReady, SyncFinished };
    Kind kind;
    int bucket = -1;  // BucketStarted only
    std::chrono::steady_clock::time_point time;
  };
  const std::vector<TraceEvent>& trace() const { return trace_; }

 private:
  bool syncing() const { return enabled_ && no_sync_depth_ == 0; }
  void on_gradient_ready(int slot);
  void start_bucket(size_t bucket);
  void begin_step_if_needed();
  void reset_step();
  void record(TraceEvent::Kind kind, int bucket = -1);

  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<Communicator> comm_;
  DataParallelOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_slot_;
  int grad_hook_ = -1;
  int forward_hook_ = -1;

  bool enabled_ = true;
  int no_sync_depth_ = 0;
  bool buffers_synced_ = false;  // since the last forward
  // This step's progress.
  bool step_begun_ = false;
  std::vector<char> slot_ready_;
  std::vector<int> bucket_pending_;  // gradients each bucket still waits for
  int slots_ready_ = 0;
  size_t next_bucket_ = 0;  // the first bucket not yet started
  std::vector<WorkHandle> works_;
  std::vector<TraceEvent> trace_;
};

// The "sync" algorithm of get_distributed_optimizer: gradients are averaged over the ranks
// before each step of the local optimizer (synchronous SGD). With a DataParallel attached, the
// averaging has been overlapping backward and step() only calls finish_gradient_sync; without
// one, step() all-reduces the gradients of the data-parallel groups in one collective. Rank 0's
// parameters are broadcast when it is built (by the DataParallel when one is given), so the
// replicas start (and stay) equal.
class GradientAllReduceOptimizer : public OptimizerWrapper {
 public:
  GradientAllReduceOptimizer(std::shared_ptr<optim::Optimizer> local_optimizer,
                             std::shared_ptr<Communicator> communicator,
                             std::shared_ptr<DataParallel> data_parallel = nullptr);
  void step() override;
  std::string algorithm() const override { return "sync"; }
};

}  // namespace ember::dist
