// The NCCL backend of Communicator (see communicator.h and nccl_communicator.h).
//
// How an operation runs. The tensors it reads were computed by kernels queued on the device's
// compute stream (stream_for), which may not have run yet. Each communicator has a stream of its
// own for NCCL, so communication overlaps with the computation that follows:
//
//   compute stream:  ... backward kernels ─┐ record "ready"            ┌ wait "done" ─ next ...
//   NCCL stream:                            └ wait "ready" ─ ncclAllReduce ─ record "done" ┘
//
// The host never blocks: Work::wait() only makes the compute stream wait for "done", so every
// kernel queued after it sees the result. The barrier is the one exception (it is about the
// host), and waits until its 1-element all-reduce has completed.
//
// Failures. A collective whose peer died never completes: its kernel spins. A watchdog thread
// polls the pending operations; one older than options.timeout, or an error NCCL reports
// asynchronously (ncclCommGetAsyncError), aborts the communicator (ncclCommAbort, which stops
// the kernels), and every pending operation then fails: Work::wait() and every later operation
// throw an error naming the op, the rank and the group's size.
//
// Joining. Rank 0 makes NCCL's unique id and passes it through the store; before that, every
// rank publishes its GPU (host name and PCI bus id) and all ranks refuse together when two of
// them share a GPU (dist/nccl_device_check.h), since NCCL cannot run that. The store's waits
// have a deadline, so a rank that never comes is named instead of hanging ncclCommInitRank.
#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>  // streams, devices, PCI bus ids
#include <nccl.h>          // ncclAllReduce, ncclCommSplit, ...
#include <unistd.h>        // gethostname

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "dist/nccl_device_check.h"
#include "engine/error.h"
#include "engine/runtime.h"  // DeviceStream, DeviceEvent, stream_for

namespace ember::dist {

namespace {

// ---- error checks: every CUDA runtime and NCCL call goes through one of these ----------------

void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw Error(str_cat("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status),
                      ") in ", call, " at ", file, ":", line));
}

// ncclGetLastError holds NCCL's own explanation (which peer, which transport) of the last error.
void check_nccl(ncclResult_t status, const char* call, const char* file, int line) {
  if (status == ncclSuccess) return;
  const char* detail = ncclGetLastError(nullptr);
  throw Error(str_cat("NCCL error ", ncclGetErrorString(status), " (", static_cast<int>(status),
                      ") in ", call, " at ", file, ":", line,
                      detail && detail[0] ? str_cat(": ", detail) : std::string()));
}

#define EMBER_DIST_CUDA_CHECK(call) check_cuda((call), #call, __FILE__, __LINE__)
#define EMBER_NCCL_CHECK(call) check_nccl((call), #call, __FILE__, __LINE__)

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

ncclRedOp_t nccl_reduce_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return ncclSum;
    case ReduceOp::Average:
      return ncclAvg;
    case ReduceOp::Max:
      return ncclMax;
    case ReduceOp::Min:
      return ncclMin;
  }
  throw Error("nccl: unknown reduce op");
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

std::string pci_bus_id(int device) {
  char bus_id[64] = {};
  EMBER_DIST_CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device));
  return bus_id;
}

// ---- a started operation ---------------------------------------------------------------------

class NcclWork : public Work {
 public:
  NcclWork(std::string where, Device device, std::vector<Tensor> tensors,
           Clock::time_point deadline, bool host_wait)
      : where_(std::move(where)),
        device_(device),
        tensors_(std::move(tensors)),
        completion_(device),
        started_(Clock::now()),
        deadline_(deadline),
        host_wait_(host_wait) {}

  bool is_completed() override {
    return status_.load(std::memory_order_acquire) != Status::Pending || completion_.done();
  }

  void wait() override {
    if (host_wait_) {
      // Polls rather than cudaEventSynchronize, so that a failure the watchdog finds ends the
      // wait; past the deadline (with a margin for the watchdog) it gives up on its own.
      const Clock::time_point give_up = deadline_ + std::chrono::seconds(5);
      while (status_.load(std::memory_order_acquire) == Status::Pending && !completion_.done()) {
        if (Clock::now() > give_up)
          throw TimeoutError(str_cat(where_, " did not complete within its timeout"));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    throw_if_failed();
    if (!host_wait_) completion_.make_stream_wait(stream_for(device_));
  }

  // The watchdog's side.
  DeviceEvent& completion() { return completion_; }
  const std::string& where() const { return where_; }
  Clock::time_point started() const { return started_; }
  Clock::time_point deadline() const { return deadline_; }
  void finish() {
    status_.store(Status::Finished, std::memory_order_release);
    tensors_.clear();  // the NCCL stream is done with them
  }
  void fail(const std::string& message, bool timeout) {
    error_ = message;
    error_is_timeout_ = timeout;
    status_.store(Status::Failed, std::memory_order_release);
  }

 private:
  enum class Status { Pending, Finished, Failed };

  void throw_if_failed() const {
    if (status_.load(std::memory_order_acquire) != Status::Failed) return;
    if (error_is_timeout_) throw TimeoutError(error_);
    throw Error(error_);
  }

  std::string where_;  // "nccl all_reduce on rank 1 of a group of 4"
  Device device_;
  std::vector<Tensor> tensors_;  // kept alive until NCCL has finished with them
  DeviceEvent completion_;       // recorded on the NCCL stream after the operation
  Clock::time_point started_, deadline_;
  bool host_wait_;  // the barrier: wait() blocks the host
  std::atomic<Status> status_{Status::Pending};
  std::string error_;  // written before status_ becomes Failed
  bool error_is_timeout_ = false;
};

// ---- the communicator --------------------------------------------------------------------------

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, std::vector<int> world_ranks, Device device,
                   CommunicatorOptions options)
      : Communicator(options),
        comm_(comm),
        rank_(rank),
        size_(size),
        world_ranks_(std::move(world_ranks)),
        device_(device),
        stream_(device),
        compute_ready_(device),
        barrier_buffer_(zeros({1}, TensorOptions(DType::F32, device))) {
    watchdog_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    // The watchdog stays until every pending operation has completed or failed (each has a
    // deadline), so operations still running on the GPU are not cut short.
    {
      std::lock_guard<std::mutex> lock(pending_mutex_);
      stopping_ = true;
    }
    pending_changed_.notify_all();
    watchdog_.join();
    std::lock_guard<std::timed_mutex> lock(comm_mutex_);
    if (!aborted_) ncclCommDestroy(comm_);  // a destructor reports nothing
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }

  WorkHandle all_reduce(Tensor tensor, ReduceOp op) override {
    check_tensor("all_reduce", tensor, "tensor");
    return start("all_reduce", bytes_of(tensor), {tensor}, false, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), count_of(tensor),
                                     nccl_dtype(tensor), nccl_reduce_op(op), comm_, stream));
    });
  }

  WorkHandle broadcast(Tensor tensor, int root) override {
    check_tensor("broadcast", tensor, "tensor");
    check_peer("broadcast", root, "root", true);
    return start("broadcast", bytes_of(tensor), {tensor}, false, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), count_of(tensor),
                                     nccl_dtype(tensor), root, comm_, stream));
    });
  }

  WorkHandle all_gather(Tensor input, Tensor output) override {
    check_tensor("all_gather", input, "input");
    check_tensor("all_gather", output, "output");
    check_same_dtype("all_gather", input, output);
    EMBER_CHECK(output.numel() == input.numel() * size_, "nccl all_gather: the output has ",
                output.numel(), " elements, expected ", size_, " ranks x ", input.numel());
    return start("all_gather", bytes_of(input), {input, output}, false, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(), count_of(input),
                                     nccl_dtype(input), comm_, stream));
    });
  }

  // One broadcast per rank, rank r's input into its place in the output, grouped so that NCCL
  // runs them together rather than one after another.
  WorkHandle all_gather_v(Tensor input, Tensor output, std::vector<int64_t> counts) override {
    check_tensor("all_gather_v", input, "input");
    check_tensor("all_gather_v", output, "output");
    check_same_dtype("all_gather_v", input, output);
    EMBER_CHECK(static_cast<int>(counts.size()) == size_, "nccl all_gather_v: ", counts.size(),
                " counts for a group of ", size_, " ranks");
    int64_t total = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      EMBER_CHECK(counts[r] >= 0, "nccl all_gather_v: counts[", r, "] is ", counts[r]);
      total += counts[r];
    }
    EMBER_CHECK(input.numel() == counts[rank_], "nccl all_gather_v: rank ", rank_, "'s input has ",
                input.numel(), " elements, but counts[", rank_, "] is ", counts[rank_]);
    EMBER_CHECK(output.numel() == total, "nccl all_gather_v: the output has ", output.numel(),
                " elements, expected the sum of counts, ", total);
    return start("all_gather_v", bytes_of(input), {input, output}, false, [&](cudaStream_t stream) {
      auto* out = static_cast<char*>(output.data_ptr());
      const size_t element = output.element_size();
      EMBER_NCCL_CHECK(ncclGroupStart());
      ncclResult_t status = ncclSuccess;
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        void* place = out + offset * element;
        const void* source = r == rank_ ? input.data_ptr() : place;
        if (counts[r] > 0 && status == ncclSuccess)
          status = ncclBroadcast(source, place, static_cast<size_t>(counts[r]), nccl_dtype(input),
                                 r, comm_, stream);
        offset += counts[r];
      }
      const ncclResult_t ended = ncclGroupEnd();  // always closes the group
      EMBER_NCCL_CHECK(status);
      EMBER_NCCL_CHECK(ended);
    });
  }

  WorkHandle reduce_scatter(Tensor input, Tensor output, ReduceOp op) override {
    check_tensor("reduce_scatter", input, "input");
    check_tensor("reduce_scatter", output, "output");
    check_same_dtype("reduce_scatter", input, output);
    EMBER_CHECK(input.numel() == output.numel() * size_, "nccl reduce_scatter: the input has ",
                input.numel(), " elements, expected ", size_, " ranks x the output's ",
                output.numel());
    return start(
        "reduce_scatter", bytes_of(input), {input, output}, false, [&](cudaStream_t stream) {
          EMBER_NCCL_CHECK(ncclReduceScatter(input.data_ptr(), output.data_ptr(), count_of(output),
                                             nccl_dtype(input), nccl_reduce_op(op), comm_, stream));
        });
  }

  // NCCL has no tags: the n-th recv from a rank matches the n-th send to it, in order, and the
  // tags only have to agree with that order (they are not sent).
  WorkHandle send(Tensor tensor, int dst, int /*tag*/) override {
    check_tensor("send", tensor, "tensor");
    check_peer("send", dst, "dst", false);
    return start("send", bytes_of(tensor), {tensor}, false, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(
          ncclSend(tensor.data_ptr(), count_of(tensor), nccl_dtype(tensor), dst, comm_, stream));
    });
  }

  WorkHandle recv(Tensor tensor, int src, int /*tag*/) override {
    check_tensor("recv", tensor, "tensor");
    check_peer("recv", src, "src", false);
    return start("recv", bytes_of(tensor), {tensor}, false, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(
          ncclRecv(tensor.data_ptr(), count_of(tensor), nccl_dtype(tensor), src, comm_, stream));
    });
  }

  // A 1-element all-reduce that every rank must join; wait() blocks the host until it is done.
  WorkHandle barrier() override {
    return start("barrier", 0, {barrier_buffer_}, true, [&](cudaStream_t stream) {
      EMBER_NCCL_CHECK(ncclAllReduce(barrier_buffer_.data_ptr(), barrier_buffer_.data_ptr(), 1,
                                     ncclFloat32, ncclSum, comm_, stream));
    });
  }

  // ncclCommSplit: members pass color 0 and their place in `ranks` as the key (so the new
  // group numbers them in that order); the others pass NCCL_SPLIT_NOCOLOR and get no comm.
  std::shared_ptr<Communicator> new_group(const std::vector<int>& ranks) override {
    std::vector<bool> seen(static_cast<size_t>(size_), false);
    int key = -1;
    for (size_t i = 0; i < ranks.size(); ++i) {
      EMBER_CHECK(ranks[i] >= 0 && ranks[i] < size_, "nccl new_group: rank ", ranks[i],
                  " is outside the group of ", size_);
      EMBER_CHECK(!seen[ranks[i]], "nccl new_group: rank ", ranks[i], " is listed twice");
      seen[ranks[i]] = true;
      if (ranks[i] == rank_) key = static_cast<int>(i);
    }
    EMBER_CHECK(!ranks.empty(), "nccl new_group: the list of ranks is empty");
    ncclComm_t group = nullptr;
    {
      std::lock_guard<std::timed_mutex> lock(comm_mutex_);
      throw_if_aborted("new_group");
      EMBER_DIST_CUDA_CHECK(cudaSetDevice(device_.index));
      EMBER_NCCL_CHECK(ncclCommSplit(comm_, key >= 0 ? 0 : NCCL_SPLIT_NOCOLOR,
                                     key >= 0 ? key : rank_, &group, nullptr));
    }
    if (key < 0) return nullptr;
    EMBER_CHECK(group != nullptr, "nccl new_group: ncclCommSplit gave rank ", rank_,
                " no communicator");
    std::vector<int> world;
    for (int r : ranks) world.push_back(world_ranks_[r]);
    try {
      return std::make_shared<NcclCommunicator>(group, key, static_cast<int>(ranks.size()),
                                                std::move(world), device_, options_);
    } catch (...) {
      ncclCommAbort(group);
      throw;
    }
  }

 private:
  // "nccl all_reduce on rank 1 (world rank 5) of a group of 4"
  std::string where(const std::string& op) const {
    const int world = world_ranks_[rank_];
    return str_cat("nccl ", op, " on rank ", rank_,
                   world != rank_ ? str_cat(" (world rank ", world, ")") : std::string(),
                   " of a group of ", size_);
  }

  void check_tensor(const char* op, const Tensor& tensor, const char* name) const {
    EMBER_CHECK(tensor.defined(), "nccl ", op, ": the ", name, " is an undefined tensor");
    EMBER_CHECK(tensor.device().is_cuda(), "nccl ", op, ": the ", name,
                " is a CPU tensor; NCCL moves CUDA tensors only: use Gloo (--dist-backend gloo) "
                "for CPU tensors");
    EMBER_CHECK(tensor.device() == device_, "nccl ", op, ": the ", name, " is on ", tensor.device(),
                ", but this communicator's GPU is ", device_);
    EMBER_CHECK(tensor.is_contiguous(), "nccl ", op, ": the ", name, " is not contiguous");
    nccl_dtype(tensor, op);
  }

  static ncclDataType_t nccl_dtype(const Tensor& tensor, const char* op = "") {
    switch (tensor.dtype()) {
      case DType::F32:
        return ncclFloat32;
      case DType::F64:
        return ncclFloat64;
      case DType::I32:
        return ncclInt32;
      case DType::I64:
        return ncclInt64;
      default:
        throw Error(str_cat("nccl ", op, ": dtype ", dtype_name(tensor.dtype()),
                            " is not supported (f32, f64, i32 or i64)"));
    }
  }

  static void check_same_dtype(const char* op, const Tensor& input, const Tensor& output) {
    EMBER_CHECK(input.dtype() == output.dtype(), "nccl ", op, ": the input is ",
                dtype_name(input.dtype()), " but the output is ", dtype_name(output.dtype()));
  }

  void check_peer(const char* op, int peer, const char* name, bool self_allowed) const {
    EMBER_CHECK(peer >= 0 && peer < size_, "nccl ", op, ": ", name, " ", peer,
                " is outside the group of ", size_);
    EMBER_CHECK(self_allowed || peer != rank_, "nccl ", op, ": rank ", rank_,
                " cannot exchange with itself");
  }

  static int64_t bytes_of(const Tensor& tensor) {
    return tensor.numel() * static_cast<int64_t>(tensor.element_size());
  }
  static size_t count_of(const Tensor& tensor) { return static_cast<size_t>(tensor.numel()); }

  std::string last_error() const {
    const char* text = ncclGetLastError(comm_);
    return text ? text : "";
  }

  void throw_if_aborted(const std::string& op) {
    if (!aborted_) return;
    std::lock_guard<std::mutex> lock(pending_mutex_);
    throw Error(str_cat(where(op), ": the communicator was aborted earlier: ", abort_reason_));
  }

  // Orders the NCCL stream after the compute stream, issues the operation, marks its end.
  WorkHandle start(const char* op, int64_t payload_bytes, std::vector<Tensor> tensors,
                   bool host_wait, const std::function<void(cudaStream_t)>& issue) {
    auto work = std::make_shared<NcclWork>(where(op), device_, std::move(tensors),
                                           Clock::now() + options_.timeout, host_wait);
    {
      std::lock_guard<std::timed_mutex> lock(comm_mutex_);
      throw_if_aborted(op);
      EMBER_DIST_CUDA_CHECK(cudaSetDevice(device_.index));
      const auto nccl_stream = static_cast<cudaStream_t>(stream_.get());
      compute_ready_.record(stream_for(device_));
      compute_ready_.make_stream_wait(nccl_stream);
      issue(nccl_stream);
      work->completion().record(nccl_stream);
    }
    count_started(op, payload_bytes);
    {
      std::lock_guard<std::mutex> lock(pending_mutex_);
      if (aborted_)  // aborted while this operation was being issued
        work->fail(str_cat(where(op), ": the communicator was aborted: ", abort_reason_), false);
      else
        pending_.push_back(work);
    }
    pending_changed_.notify_all();
    return work;
  }

  // The watchdog: completes finished operations (and counts their time), and aborts the
  // communicator when one is past its deadline or NCCL reports an error.
  void watch() {
    cudaSetDevice(device_.index);  // the events it queries belong to this GPU
    std::unique_lock<std::mutex> lock(pending_mutex_);
    while (true) {
      if (pending_.empty()) {
        if (stopping_) return;
        pending_changed_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
      const std::deque<std::shared_ptr<NcclWork>> pending = pending_;
      lock.unlock();
      std::string failure;
      bool timeout = false;
      std::vector<std::shared_ptr<NcclWork>> finished;
      try {
        const Clock::time_point now = Clock::now();
        for (const auto& work : pending) {
          if (work->completion().done()) {
            finished.push_back(work);
          } else if (now > work->deadline() && failure.empty()) {
            failure = str_cat(work->where(), " did not complete within ",
                              seconds_between(work->started(), work->deadline()),
                              " s (options.timeout): a peer may have died or stopped calling "
                              "the same collectives");
            timeout = true;
          }
        }
        ncclResult_t async_error = ncclSuccess;
        EMBER_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
        if (async_error != ncclSuccess && async_error != ncclInProgress && failure.empty())
          failure = str_cat(pending.front()->where(), " failed: NCCL reported ",
                            ncclGetErrorString(async_error), " (", last_error(), ")");
      } catch (const std::exception& e) {
        if (failure.empty()) failure = str_cat(pending.front()->where(), " failed: ", e.what());
      }
      const Clock::time_point now = Clock::now();
      lock.lock();
      for (const auto& work : finished) {
        work->finish();
        count_completed(seconds_between(work->started(), now));
        for (auto it = pending_.begin(); it != pending_.end(); ++it)
          if (*it == work) {
            pending_.erase(it);
            break;
          }
      }
      if (!failure.empty()) {
        lock.unlock();
        abort(failure, timeout);
        lock.lock();
      } else if (!pending_.empty()) {
        pending_changed_.wait_for(lock, std::chrono::milliseconds(1));
      }
    }
  }

  // Fails every pending operation and aborts the NCCL communicator, which stops its kernels.
  // The lock on comm_ waits briefly for an operation being issued; if the issuing thread is
  // stuck inside NCCL, aborting is exactly what releases it.
  void abort(const std::string& reason, bool timeout) {
    std::deque<std::shared_ptr<NcclWork>> failed;
    {
      std::lock_guard<std::mutex> lock(pending_mutex_);
      if (aborted_) return;
      abort_reason_ = reason;
      aborted_ = true;
      failed.swap(pending_);
    }
    for (const auto& work : failed) {
      if (reason.compare(0, work->where().size(), work->where()) == 0)
        work->fail(reason, timeout);  // the operation that failed
      else
        work->fail(str_cat(work->where(), " was aborted: ", reason), timeout);
    }
    const bool locked = comm_mutex_.try_lock_for(std::chrono::seconds(1));
    ncclCommAbort(comm_);
    if (locked) comm_mutex_.unlock();
  }

  ncclComm_t comm_;
  int rank_, size_;
  std::vector<int> world_ranks_;
  Device device_;
  DeviceStream stream_;          // the NCCL stream
  DeviceEvent compute_ready_;    // re-recorded on the compute stream by every operation
  Tensor barrier_buffer_;        // barrier()'s one element
  std::timed_mutex comm_mutex_;  // held while NCCL calls are issued on comm_
  std::mutex pending_mutex_;     // guards pending_, stopping_, abort_reason_
  std::condition_variable pending_changed_;
  std::deque<std::shared_ptr<NcclWork>> pending_;  // started, not yet completed, in order
  bool stopping_ = false;
  std::atomic<bool> aborted_{false};
  std::string abort_reason_;
  std::thread watchdog_;
};

// Waits for every rank's `keys[r]`; after `timeout`, an error names the ranks that are missing.
void wait_for_ranks(Store& store, const std::vector<std::string>& keys, Milliseconds timeout,
                    int rank, int size, const std::string& what) {
  try {
    store.wait(keys, timeout);
  } catch (const Error&) {
    std::string missing;
    for (size_t r = 0; r < keys.size(); ++r)
      if (!store.check({keys[r]})) missing += str_cat(missing.empty() ? "" : ", ", r);
    throw TimeoutError(str_cat("nccl: rank ", rank, " of ", size, " waited ",
                               static_cast<double>(timeout.count()) / 1000, " s for ", what,
                               " of rank(s) ", missing, ", which did not come"));
  }
}

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Store> store, int rank,
                                                     int size, CommunicatorOptions options,
                                                     Device device) {
  EMBER_CHECK(size >= 1 && rank >= 0 && rank < size, "nccl: rank ", rank,
              " is outside a world of size ", size);
  EMBER_CHECK(device.is_cuda(), "--dist-backend nccl: rank ", rank, "'s device is ", device,
              "; NCCL moves CUDA tensors only: use Gloo (--dist-backend gloo) for CPU tensors");
  EMBER_CHECK(cuda_available(), "--dist-backend nccl: no usable GPU (", cuda_unavailable_reason(),
              "); use --dist-backend gloo");
  EMBER_CHECK(device.index < cuda_device_count(), "--dist-backend nccl: rank ", rank, "'s device ",
              device, " does not exist (this machine has ", cuda_device_count(), " GPUs)");
  EMBER_DIST_CUDA_CHECK(cudaSetDevice(device.index));

  // The n-th NCCL communicator a rank makes meets the n-th of every other rank in a namespace
  // of its own, so keys of successive communicators on one store never collide.
  const int64_t number = store->add(str_cat("nccl/made_by_rank_", rank), 1);
  PrefixStore meeting(str_cat("nccl/", number), store);

  std::vector<std::string> gpu_keys;
  for (int r = 0; r < size; ++r) gpu_keys.push_back(str_cat("gpu/", r));
  const GpuIdentity mine{host_name(), pci_bus_id(device.index)};
  meeting.set(gpu_keys[rank], to_bytes(encode_gpu_identity(mine)));
  wait_for_ranks(meeting, gpu_keys, options.timeout, rank, size, "the GPU identity");
  std::vector<GpuIdentity> gpus;
  for (int r = 0; r < size; ++r)
    gpus.push_back(decode_gpu_identity(gpu_keys[r], to_string(meeting.get(gpu_keys[r]))));
  const std::string shared = shared_gpu_message(gpus);
  if (!shared.empty()) throw Error(shared);

  if (rank == 0) {
    ncclUniqueId id;
    EMBER_NCCL_CHECK(ncclGetUniqueId(&id));
    const auto* begin = reinterpret_cast<const uint8_t*>(&id);
    meeting.set("unique_id", Bytes(begin, begin + sizeof(id)));
  }
  wait_for_ranks(meeting, {"unique_id"}, options.timeout, rank, size, "NCCL's unique id");
  const Bytes id_bytes = meeting.get("unique_id");
  ncclUniqueId id;
  EMBER_CHECK(id_bytes.size() == sizeof(id), "nccl: the store's unique id has ", id_bytes.size(),
              " bytes, expected ", sizeof(id));
  std::copy(id_bytes.begin(), id_bytes.end(), reinterpret_cast<uint8_t*>(&id));

  ncclComm_t comm = nullptr;
  EMBER_NCCL_CHECK(ncclCommInitRank(&comm, size, id, rank));
  std::vector<int> world_ranks(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) world_ranks[r] = r;
  try {
    return std::make_shared<NcclCommunicator>(comm, rank, size, std::move(world_ranks), device,
                                              options);
  } catch (...) {
    ncclCommAbort(comm);
    throw;
  }
}

}  // namespace ember::dist
