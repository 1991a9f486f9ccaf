// The DataLoader: batches of float tensors from a Dataset, in the order a Sampler gives, with
// the decoding and augmentation done on worker threads ahead of the training loop.
//
//   DataLoader loader(train, std::make_shared<RandomSampler>(train->size(), seed), augment,
//                     Normalize{{0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}}, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     Batch batch;
//     while (loader.next(batch)) train_step(batch.images, batch.labels);
//   }
//
// How a batch is made: a worker takes the next batch number, loads each of its examples, applies
// the transform with the example's own SampleRandom(seed, epoch, index), checks that every image
// has the first one's shape, and writes the normalized planes straight into the batch's host
// memory. Batch k lives in slot k % slots until the caller takes it, so batches come out in
// sampler order whichever worker finishes first, and the same seed gives the same bits with any
// number of workers.
//
// On a GPU the host memory is pinned, and next() queues the batch's copy on the loader's own
// stream, then makes the device's default stream (where the model runs) wait for it with an
// event: the host never waits for a copy. If the next batch is already assembled, its copy is
// queued before the current one is returned, so it travels while the model computes (one batch
// in flight ahead; data_loader.cpp explains why reusing memory is safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>  // exception_ptr
#include <functional>
#include <memory>
#include <vector>

#include "datasets/dataset.h"     // Dataset
#include "datasets/sampler.h"     // Sampler
#include "datasets/transforms.h"  // Transform, Normalize
#include "engine/device.h"        // Device
#include "engine/tensor.h"        // Tensor

namespace ember::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  // Threads that assemble batches. 0: the calling thread assembles each batch inside next().
  int workers = 0;
  // Drop the epoch's last batch when it has fewer than batch_size examples.
  bool drop_last = false;
  // Batches each worker may have ready or in the making ahead of the caller (PyTorch's
  // prefetch_factor): the loader holds at most workers × prefetch_batches batches in host memory.
  // Ignored with 0 workers.
  int prefetch_batches = 2;
  // Where the batches' tensors live.
  Device device = Device::cpu();
  // The augmentations' seed: example i of epoch e draws from SampleRandom(seed, e, i).
  uint64_t seed = 0;
  // Take the GPU's path for CPU batches too: pinned staging memory, the copy stream and events
  // (plain memory, memcpy and no-ops on the CPU). Only tests want this: it runs that path's
  // bookkeeping on machines without a GPU.
  bool force_copy_path = false;
};

struct Batch {
  Tensor images;                // f32 [B, C, H, W] on options.device
  Tensor labels;                // i64 [B] on options.device
  std::vector<size_t> indices;  // the data-set indices of the B examples, in batch order
  int64_t epoch = 0;
  int64_t step = 0;  // the batch's number within its epoch, from 0
};

// Where the time went. wait_seconds is the time next() spent waiting for a batch that was not
// ready yet: with a GPU, about the time it sat idle for want of data (less the work queued
// before the wait, which the GPU was still doing).
struct DataLoaderStats {
  int64_t batches = 0;         // batches handed out
  int64_t examples = 0;        // examples in those batches
  double wait_seconds = 0;     // inside next(), waiting for a batch to be assembled
  double next_seconds = 0;     // inside next() altogether (waiting, copies, bookkeeping)
  double elapsed_seconds = 0;  // wall time of the epochs: from start_epoch to the end of the epoch
                               // (or to now, mid-epoch)
  double wait_fraction() const { return elapsed_seconds > 0 ? wait_seconds / elapsed_seconds : 0; }
};

class DataLoader {
 public:
  // `transform` may be null (no augmentation). Worker threads start here and idle until
  // start_epoch. Options are checked (batch_size ≥ 1, workers ≥ 0, prefetch_batches ≥ 1).
  DataLoader(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Sampler> sampler,
             std::shared_ptr<const Transform> transform, Normalize normalize,
             DataLoaderOptions options);
  // Stops the workers (each abandons its batch at the next example) and waits for them.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Batches per epoch: sampler size / batch_size, rounded up unless drop_last.
  size_t steps_per_epoch() const;
  // Begins epoch `epoch` (the sampler's order for it); the batches of an unfinished epoch are
  // discarded. Workers start assembling at once.
  void start_epoch(int64_t epoch);
  // The epoch's next batch, in sampler order; false when the epoch is over (and on every later
  // call until start_epoch). An error met while making the batch (a corrupt file, images of two
  // shapes in one batch) is thrown here, as it was thrown; the batches before it come out first,
  // and every later call throws it again until the next start_epoch.
  bool next(Batch& batch);

  DataLoaderStats stats() const;
  void reset_stats();
  const DataLoaderOptions& options() const { return options_; }

 private:
  struct HostBatch;  // a batch in host memory, as a worker leaves it
  class PinnedPool;  // pinned host memory for batches bound for a GPU (CUDA only)
  class Workers;     // the threads and the slots they assemble batches into
  class GpuCopies;   // the copy stream and the batch in flight (CUDA only)

  // Batch `step` of the current epoch in host memory, from a worker or assembled here.
  HostBatch take(int64_t step);
  // Loads, transforms and normalizes batch `step` of `indices` into `out`, using `image` as the
  // buffer; returns false (out untouched) as soon as abandoned() says the batch is no longer
  // wanted. Called from several threads at once.
  bool assemble(int64_t epoch, const std::vector<size_t>& indices, int64_t step, Image& image,
                HostBatch& out, const std::function<bool()>& abandoned) const;

  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<const Sampler> sampler_;
  std::shared_ptr<const Transform> transform_;
  Normalize normalize_;
  DataLoaderOptions options_;

  // The current epoch, as the caller's thread sees it.
  bool started_ = false;
  int64_t epoch_ = 0;
  int64_t steps_ = 0;      // batches in this epoch
  int64_t next_step_ = 0;  // the next batch next() returns
  std::shared_ptr<const std::vector<size_t>> indices_;
  std::exception_ptr failure_;  // the error that ended this epoch, if one did
  Image caller_image_;          // the buffer for assembling on the caller's thread

  DataLoaderStats stats_;
  double epoch_start_ = 0;  // steady-clock seconds at start_epoch
  bool epoch_clock_running_ = false;

  // Declared in the order they must be built; they are destroyed in reverse: the workers are
  // joined first, then the batch in flight is dropped, then the pool goes once the last block
  // is back.
  std::shared_ptr<PinnedPool> pinned_;  // null for CPU batches (unless force_copy_path)
  std::unique_ptr<GpuCopies> gpu_;      // likewise
  std::unique_ptr<Workers> workers_;    // null with 0 workers
};

}  // namespace ember::data
