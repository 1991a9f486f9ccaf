// The DataLoader's machinery, in three parts:
//
//   PinnedPool  pinned host memory for batches bound for a GPU, reused once its copy is done;
//   Workers     the threads and the slots they assemble batches into, in order;
//   GpuCopies   the copy stream and the batch whose copy is in flight.
//
// With CPU batches only the Workers are there, and a batch's host tensors are handed out as
// they are (they come from ember's ordinary allocator).
#include "datasets/data_loader.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>  // exception_ptr: an error crosses from a worker to the caller
#include <functional>
#include <mutex>
#include <thread>

#include "datasets/sample_random.h"  // SampleRandom
#include "engine/autograd.h"         // AutogradMeta, which a TensorImpl made here needs complete
#include "engine/error.h"            // EMBER_CHECK, str_cat
#include "engine/runtime.h"          // pinned memory, DeviceStream, DeviceEvent, stream_for

namespace ember::data {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A tensor over part of a storage (the images and the labels of a pinned block share one).
Tensor tensor_over(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                   int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

std::string shape_text(const Image& image) {
  return str_cat(image.height, "×", image.width, "×", image.channels);
}

}  // namespace

// A batch as the worker leaves it: in host memory (pinned when bound for a GPU).
struct DataLoader::HostBatch {
  Tensor images;  // f32 [B, C, H, W]
  Tensor labels;  // i64 [B]
  std::vector<size_t> indices;
};

// ---- PinnedPool ------------------------------------------------------------------------------
// cudaHostAlloc is slow (it maps the memory for the device), so blocks are kept and reused. A
// block holds one batch: its images, then its labels. It leaves the pool as two CPU tensors over
// one Storage; when both are gone (the copy is queued, or the batch was discarded) the block
// comes back, but it is handed out again only once its copy event is done: until then the copy
// engine may still be reading it.
class DataLoader::PinnedPool : public std::enable_shared_from_this<PinnedPool> {
 public:
  // Beyond `enough_blocks`, a request waits for the oldest copy rather than pin more memory.
  PinnedPool(Device device, size_t enough_blocks)
      : device_(device), enough_blocks_(enough_blocks) {}

  ~PinnedPool() {
    for (auto& block : blocks_) {
      try {
        block->copied.synchronize();  // the copy engine may still read it
      } catch (const std::exception&) {
        // a failing device: nothing to wait for any more, and a destructor must not throw
      }
      free_pinned(device_, block->memory);
    }
  }

  HostBatch take(const Shape& image_shape) {
    const int64_t batch = image_shape[0];
    const size_t image_bytes = static_cast<size_t>(shape_numel(image_shape)) * sizeof(float);
    // labels start at the next multiple of 8 bytes: i64-aligned
    const size_t label_offset = (image_bytes + 7) / 8 * 8;
    const size_t bytes = label_offset + static_cast<size_t>(batch) * sizeof(int64_t);
    Block* block = acquire(bytes);
    auto self = shared_from_this();  // blocks may come back after the loader is gone
    auto storage = std::make_shared<Storage>(block->memory, bytes, Device::cpu(),
                                             [self, block](void*) { self->give_back(block); });
    HostBatch host;
    host.images = tensor_over(storage, image_shape, DType::F32, 0);
    host.labels = tensor_over(storage, {batch}, DType::I64,
                              static_cast<int64_t>(label_offset / sizeof(int64_t)));
    return host;
  }

  // The copy that reads the block under `host` has been queued on `stream`.
  void copy_queued(const HostBatch& host, kernels::Stream stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& block : blocks_)
      if (block->memory == host.images.storage()->data()) block->copied.record(stream);
  }

 private:
  struct Block {
    Block(Device device, size_t size) : bytes(size), copied(device) {
      memory = allocate_pinned(device, size);
    }
    void* memory = nullptr;
    size_t bytes;
    DeviceEvent copied;     // recorded after the copy that reads this block
    bool in_use = true;     // a host batch holds it
    uint64_t returned = 0;  // when it came back (a counter), to find the oldest
  };

  Block* acquire(size_t bytes) {
    std::unique_lock<std::mutex> lock(mutex_);
    // The smallest free block that fits and whose copy is done.
    Block* best = nullptr;
    for (auto& block : blocks_)
      if (!block->in_use && block->bytes >= bytes && (!best || block->bytes < best->bytes) &&
          block->copied.done())
        best = block.get();
    if (!best && blocks_.size() >= enough_blocks_) {
      // Enough memory is pinned: wait for the copy of the block that came back first.
      for (auto& block : blocks_)
        if (!block->in_use && (!best || block->returned < best->returned)) best = block.get();
      if (best) {
        best->in_use = true;
        lock.unlock();  // the copy may take a while; others may use the pool meanwhile
        best->copied.synchronize();
        if (best->bytes < bytes) replace_memory(best, bytes);  // too small
        return best;
      }
    }
    if (best) {
      best->in_use = true;
      return best;
    }
    // Nothing reusable: pin a new block (a few times per run, while the queue fills).
    blocks_.push_back(std::make_unique<Block>(device_, bytes));
    return blocks_.back().get();
  }

  // Gives `block` (held, not locked) `bytes` of new memory in place of its old.
  void replace_memory(Block* block, size_t bytes) {
    void* bigger = nullptr;
    try {
      bigger = allocate_pinned(device_, bytes);
    } catch (...) {
      give_back(block);
      throw;
    }
    void* old = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);  // copy_queued reads every block's memory
      old = block->memory;
      block->memory = bigger;
      block->bytes = bytes;
    }
    free_pinned(device_, old);
  }

  void give_back(Block* block) {
    std::lock_guard<std::mutex> lock(mutex_);
    block->in_use = false;
    block->returned = ++returns_;
  }

  Device device_;
  size_t enough_blocks_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Block>> blocks_;  // never shrinks: Block addresses stay valid
  uint64_t returns_ = 0;
};

// ---- Workers ---------------------------------------------------------------------------------
// Batch k of an epoch is made in slot k % slots. A worker takes batch numbers in order, but only
// while k < (the next batch the caller takes) + slots, so a slot is reused only after the caller
// took the batch that was in it: batches come out in order, and host memory stays bounded.
//
// Each epoch (and the shutdown) starts a new generation. A worker checks the generation between
// examples and abandons a batch of an older one, and a batch finished for an older generation is
// thrown away instead of stored: so a new epoch and the destructor never wait for more than one
// example per worker.
class DataLoader::Workers {
 public:
  Workers(const DataLoader& loader, int count, int slots) : loader_(loader), slots_(slots) {
    for (int i = 0; i < count; ++i) threads_.emplace_back([this] { run(); });
  }

  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      ++generation_;
    }
    work_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  void start(int64_t epoch, std::shared_ptr<const std::vector<size_t>> indices, int64_t steps) {
    std::vector<Slot> old(slots_.size());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++generation_;
      epoch_ = epoch;
      indices_ = std::move(indices);
      steps_ = steps;
      next_to_assign_ = next_to_take_ = 0;
      failed_ = false;
      slots_.swap(old);
    }
    work_.notify_all();
    // `old` dies here, outside the lock: its batches' memory goes back to the allocator or pool
  }

  // Whether batch `step` is assembled and waiting (an error does not count: it is thrown in
  // order, by take).
  bool ready(int64_t step) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Slot& slot = slot_of(step);
    return slot.step == step && slot.state == Slot::Ready;
  }

  // Batch `step`, the next one in order, waiting for it if needed (adding the time to `waited`).
  HostBatch take(int64_t step, double& waited) {
    std::unique_lock<std::mutex> lock(mutex_);
    EMBER_CHECK(step == next_to_take_, "DataLoader: batch ", step, " taken out of order");
    Slot& slot = slot_of(step);
    auto finished = [&] {
      return slot.step == step && (slot.state == Slot::Ready || slot.state == Slot::Failed);
    };
    if (!finished()) {
      const double start = now_seconds();
      ready_.wait(lock, finished);
      waited += now_seconds() - start;
    }
    if (slot.state == Slot::Failed) std::rethrow_exception(slot.error);
    HostBatch batch = std::move(slot.batch);
    slot = Slot{};
    ++next_to_take_;
    lock.unlock();
    work_.notify_all();  // the window moved: one more batch may be started
    return batch;
  }

 private:
  struct Slot {
    enum State { Empty, Assembling, Ready, Failed };
    State state = Empty;
    int64_t step = -1;
    HostBatch batch;
    std::exception_ptr error;
  };

  Slot& slot_of(int64_t step) { return slots_[static_cast<size_t>(step) % slots_.size()]; }

  bool has_work() const {
    return !failed_ && next_to_assign_ < steps_ &&
           next_to_assign_ < next_to_take_ + static_cast<int64_t>(slots_.size());
  }

  void run() {
    Image image;  // this worker's buffer, reused from example to example
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_.wait(lock, [this] { return stopping_ || has_work(); });
      if (stopping_) return;
      const int64_t step = next_to_assign_++;
      const uint64_t generation = generation_;
      const int64_t epoch = epoch_;
      const std::shared_ptr<const std::vector<size_t>> indices = indices_;
      slot_of(step) = Slot{Slot::Assembling, step, {}, nullptr};
      lock.unlock();

      HostBatch batch;
      std::exception_ptr error;
      bool abandoned = false;
      try {
        abandoned = !loader_.assemble(epoch, *indices, step, image, batch,
                                      [&] { return generation_ != generation; });
      } catch (...) {  // every error reaches the caller; none may escape the thread
        error = std::current_exception();
      }

      lock.lock();
      if (abandoned || generation_ != generation) continue;  // `batch` is dropped
      Slot& slot = slot_of(step);
      if (error) {
        slot.state = Slot::Failed;
        slot.error = error;
        failed_ = true;  // start no further batch: the epoch ends at this one
      } else {
        slot.state = Slot::Ready;
        slot.batch = std::move(batch);
      }
      ready_.notify_all();
    }
  }

  const DataLoader& loader_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;                     // guards everything below but generation_'s reads
  std::condition_variable work_;         // workers wait here for a batch to start
  std::condition_variable ready_;        // the caller waits here for its batch
  std::atomic<uint64_t> generation_{0};  // read without the lock between examples
  bool stopping_ = false;
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<size_t>> indices_;
  int64_t steps_ = 0;           // 0 until the first epoch starts: nothing to do
  int64_t next_to_assign_ = 0;  // the next batch a worker starts
  int64_t next_to_take_ = 0;    // the next batch the caller takes
  bool failed_ = false;
  std::vector<Slot> slots_;
};

// ---- GpuCopies -------------------------------------------------------------------------------
// Everything here runs on the caller's thread. Two streams share the device's memory:
//
//   the compute stream (stream_for(device)): the model, and every tensor op;
//   the copy stream (ours): batch copies only.
//
// ember's caching allocator hands out memory as soon as the host frees it, which is safe for
// work on the compute stream alone (it runs in order). The copy stream must keep that promise:
//
//   1. Before a copy writes a freshly allocated device batch, the copy stream waits for an event
//      recorded on the compute stream at allocation time: the memory may have belonged to a
//      tensor that kernels queued earlier still read.
//   2. Before a device batch is handed out, or dropped unused, the compute stream waits for the
//      copy's event: every later kernel, including those that get the memory after it is freed,
//      comes after the copy.
//   3. A pinned block is refilled only after its own copy event is done (PinnedPool).
//
// None of these waits blocks the host, except 3 when the pool is exhausted.
class DataLoader::GpuCopies {
 public:
  explicit GpuCopies(Device device)
      : device_(device),
        copies_(device),
        compute_reached_(device),
        arrived_{DeviceEvent(device), DeviceEvent(device)} {}

  // Drops the batch in flight, if any, without handing it out.
  ~GpuCopies() {
    try {
      discard();
    } catch (const std::exception&) {
      // a failing device: a destructor must not throw
    }
  }

  // Queues the copy of `host` (batch `step`) to freshly allocated device tensors.
  void queue(HostBatch host, PinnedPool& pool, int64_t epoch, int64_t step) {
    const kernels::Stream compute = stream_for(device_);
    InFlight flight;
    flight.batch.images = empty(host.images.shape(), {DType::F32, device_});
    flight.batch.labels = empty(host.labels.shape(), {DType::I64, device_});
    flight.batch.indices = std::move(host.indices);
    flight.batch.epoch = epoch;
    flight.batch.step = step;
    compute_reached_.record(compute);  // rule 1
    compute_reached_.make_stream_wait(copies_.get());
    copy_to_device_async(device_, flight.batch.images.data_ptr(), host.images.data_ptr(),
                         static_cast<size_t>(host.images.numel()) * sizeof(float), copies_.get());
    copy_to_device_async(device_, flight.batch.labels.data_ptr(), host.labels.data_ptr(),
                         static_cast<size_t>(host.labels.numel()) * sizeof(int64_t), copies_.get());
    pool.copy_queued(host, copies_.get());  // rule 3; `host` returns the block as it dies
    // Two events, alternating by step: the event of batch k is waited on (rule 2) when k is
    // handed out, before the copy of batch k + 2 can record it again.
    flight.arrived = &arrived_[step % 2];
    flight.arrived->record(copies_.get());
    in_flight_ = std::move(flight);
    has_flight_ = true;
  }

  bool in_flight(int64_t step) const { return has_flight_ && in_flight_.batch.step == step; }

  Batch hand_out() {
    in_flight_.arrived->make_stream_wait(stream_for(device_));  // rule 2
    has_flight_ = false;
    return std::move(in_flight_.batch);
  }

  void discard() {
    if (has_flight_) hand_out();  // the compute stream waits, then the tensors are dropped
  }

 private:
  struct InFlight {
    Batch batch;
    DeviceEvent* arrived = nullptr;
  };

  Device device_;
  DeviceStream copies_;
  DeviceEvent compute_reached_;
  DeviceEvent arrived_[2];
  InFlight in_flight_;
  bool has_flight_ = false;
};

// ---- DataLoader ------------------------------------------------------------------------------

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset,
                       std::shared_ptr<const Sampler> sampler,
                       std::shared_ptr<const Transform> transform, Normalize normalize,
                       DataLoaderOptions options)
    : dataset_(std::move(dataset)),
      sampler_(std::move(sampler)),
      transform_(std::move(transform)),
      normalize_(std::move(normalize)),
      options_(options) {
  EMBER_CHECK(dataset_ != nullptr, "DataLoader: no data set");
  EMBER_CHECK(sampler_ != nullptr, "DataLoader: no sampler");
  EMBER_CHECK(options_.batch_size >= 1, "DataLoader: batch_size must be at least 1, got ",
              options_.batch_size);
  EMBER_CHECK(options_.workers >= 0, "DataLoader: workers must be 0 or more, got ",
              options_.workers);
  EMBER_CHECK(options_.prefetch_batches >= 1,
              "DataLoader: prefetch_batches must be at least 1, got ", options_.prefetch_batches);
  const int slots = std::max(1, options_.workers * options_.prefetch_batches);
  if (options_.device.is_cuda() || options_.force_copy_path) {
    runtime_for(options_.device);  // an error naming the device if it is not there
    // Enough pinned blocks for every slot, every worker of a discarded epoch still finishing,
    // and the batch being copied, with a little slack.
    pinned_ = std::make_shared<PinnedPool>(options_.device, slots + options_.workers + 4);
    gpu_ = std::make_unique<GpuCopies>(options_.device);
  }
  if (options_.workers > 0) workers_ = std::make_unique<Workers>(*this, options_.workers, slots);
}

// Members die in reverse order: the workers first (joined), then the batch in flight, then the
// pool (once the last host batch has returned its block).
DataLoader::~DataLoader() = default;

size_t DataLoader::steps_per_epoch() const {
  const size_t n = sampler_->size(), b = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch(int64_t epoch) {
  auto indices = std::make_shared<const std::vector<size_t>>(sampler_->epoch_indices(epoch));
  EMBER_CHECK(indices->size() == sampler_->size(), "DataLoader: the sampler gave ", indices->size(),
              " indices for epoch ", epoch, " but its size() is ", sampler_->size());
  for (size_t index : *indices)
    EMBER_CHECK(index < dataset_->size(), "DataLoader: the sampler gave index ", index,
                " for epoch ", epoch, ", but the data set has ", dataset_->size(), " examples");
  if (epoch_clock_running_) stats_.elapsed_seconds += now_seconds() - epoch_start_;
  if (gpu_) gpu_->discard();
  started_ = true;
  failure_ = nullptr;
  epoch_ = epoch;
  steps_ = static_cast<int64_t>(steps_per_epoch());
  next_step_ = 0;
  indices_ = std::move(indices);
  epoch_start_ = now_seconds();
  epoch_clock_running_ = true;
  if (workers_) workers_->start(epoch, indices_, steps_);
}

DataLoader::HostBatch DataLoader::take(int64_t step) {
  if (workers_) return workers_->take(step, stats_.wait_seconds);
  // No workers: the caller assembles the batch, and all that time is time spent waiting for it.
  const double start = now_seconds();
  HostBatch batch;
  assemble(epoch_, *indices_, step, caller_image_, batch, [] { return false; });
  stats_.wait_seconds += now_seconds() - start;
  return batch;
}

bool DataLoader::next(Batch& batch) {
  EMBER_CHECK(started_, "DataLoader::next: no epoch started; call start_epoch(epoch) first");
  if (failure_) std::rethrow_exception(failure_);
  if (next_step_ >= steps_) {
    if (epoch_clock_running_) {  // the epoch's clock stops at its end
      stats_.elapsed_seconds += now_seconds() - epoch_start_;
      epoch_clock_running_ = false;
    }
    return false;
  }
  const double start = now_seconds();
  try {
    if (!gpu_) {
      HostBatch host = take(next_step_);
      batch.images = std::move(host.images);
      batch.labels = std::move(host.labels);
      batch.indices = std::move(host.indices);
      batch.epoch = epoch_;
      batch.step = next_step_;
    } else {
      if (!gpu_->in_flight(next_step_)) gpu_->queue(take(next_step_), *pinned_, epoch_, next_step_);
      batch = gpu_->hand_out();
      // One batch in flight ahead: if the next batch is already assembled, its copy starts now
      // and travels while the model computes on this one. An error here belongs to the next
      // batch: this one is returned, and the next call throws it.
      const int64_t following = next_step_ + 1;
      try {
        if (following < steps_ && workers_ && workers_->ready(following))
          gpu_->queue(take(following), *pinned_, epoch_, following);
      } catch (...) {
        failure_ = std::current_exception();
      }
    }
  } catch (...) {
    failure_ = std::current_exception();  // thrown again by every later call of this epoch
    throw;
  }
  ++next_step_;
  ++stats_.batches;
  stats_.examples += batch.images.size(0);
  stats_.next_seconds += now_seconds() - start;
  return true;
}

bool DataLoader::assemble(int64_t epoch, const std::vector<size_t>& indices, int64_t step,
                          Image& image, HostBatch& out,
                          const std::function<bool()>& abandoned) const {
  const size_t first = static_cast<size_t>(step) * static_cast<size_t>(options_.batch_size);
  const size_t count = std::min(static_cast<size_t>(options_.batch_size), indices.size() - first);
  HostBatch batch;
  batch.indices.assign(indices.begin() + first, indices.begin() + first + count);
  float* images = nullptr;
  int64_t* labels = nullptr;
  size_t image_floats = 0;
  int height = 0, width = 0, channels = 0;
  for (size_t j = 0; j < count; ++j) {
    if (abandoned()) return false;
    const size_t index = batch.indices[j];
    dataset_->load_image(index, image);
    if (transform_) {
      SampleRandom random(options_.seed, static_cast<uint64_t>(epoch), index);
      transform_->apply(image, random);
    }
    if (j == 0) {  // the first example decides the batch's shape
      height = image.height;
      width = image.width;
      channels = image.channels;
      const Shape shape = {static_cast<int64_t>(count), channels, height, width};
      if (pinned_) {
        HostBatch pinned = pinned_->take(shape);
        batch.images = std::move(pinned.images);
        batch.labels = std::move(pinned.labels);
      } else {
        batch.images = empty(shape, DType::F32);
        batch.labels = empty({static_cast<int64_t>(count)}, DType::I64);
      }
      images = batch.images.data<float>();
      labels = batch.labels.data<int64_t>();
      image_floats = static_cast<size_t>(channels) * height * width;
    } else if (image.height != height || image.width != width || image.channels != channels) {
      throw Error(str_cat(
          "DataLoader: ", dataset_->source(index), " is ", shape_text(image),
          " (height×width×channels) after the transform, but the first image of its batch, ",
          dataset_->source(batch.indices[0]), ", is ", height, "×", width, "×", channels,
          ": a batch needs one shape; add a Resize or CenterCrop transform"));
    }
    normalize_.to_chw(image, images + j * image_floats);
    labels[j] = dataset_->label(index);
  }
  out = std::move(batch);
  return true;
}

DataLoaderStats DataLoader::stats() const {
  DataLoaderStats now = stats_;
  if (epoch_clock_running_) now.elapsed_seconds += now_seconds() - epoch_start_;
  return now;
}

void DataLoader::reset_stats() {
  stats_ = DataLoaderStats{};
  if (epoch_clock_running_) epoch_start_ = now_seconds();
}

}  // namespace ember::data
