// The Communicator: the collectives every distributed algorithm in ember is written with.
//
// A communicator is a group of `size()` processes (or threads) that call the same collectives in
// the same order. It is always passed explicitly (no hidden global group), so a test can run its
// ranks as threads of one process and an algorithm can work on a sub-group.
//
//   auto comm = make_communicator("gloo", store, rank, world_size);
//   comm->all_reduce(flat_grads, ReduceOp::Average)->wait();     // blocking use
//   WorkHandle w = comm->all_reduce(bucket, ReduceOp::Sum);      // asynchronous use: returns at
//   ...  compute the next bucket's gradients ...                 // once; the operation runs in
//   w->wait();                                                   // the background, in order
//
// Two backends (both behind this one interface):
//   gloo  CPU tensors over TCP (dist/gloo_communicator.h). CUDA tensors are staged through
//         pinned host memory, so several processes can share one GPU.
//   nccl  CUDA tensors, one GPU per rank (dist/nccl_communicator.h); on its own stream, ordered
//         after the compute stream with events.
//
// Rules every backend keeps:
//   - Operations run in the order they were started, one after another.
//   - Tensors are contiguous, of one dtype (f32, f64, i32, i64) and device; in-place operations
//     write the result into the tensor given. A Work keeps its tensors alive until it is done.
//   - Every operation has a deadline (options.timeout). When a peer dies or stops answering,
//     wait() throws TimeoutError (or ember::Error for a closed connection) naming the rank that
//     was waited on; nothing hangs.
//   - stats() counts payload bytes: the size of the buffer handed to each collective or send
//     (numel * element size of the input, once per call, whatever the algorithm moves on the
//     wire), the number of operations, and the time from start to completion.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dist/store.h"     // Store, Milliseconds
#include "engine/tensor.h"  // Tensor

namespace ember::dist {

enum class ReduceOp { Sum, Average, Max, Min };
std::string reduce_op_name(ReduceOp op);  // "sum", "average", ...

// A started operation.
class Work {
 public:
  virtual ~Work() = default;
  // Whether it has finished (successfully or not); never blocks.
  virtual bool is_completed() = 0;
  // Blocks until it has finished and rethrows its error, if any. For an operation on CUDA
  // tensors with NCCL it makes the current compute stream wait instead of blocking the host.
  virtual void wait() = 0;
};
using WorkHandle = std::shared_ptr<Work>;

// What a communicator has moved so far (see the rules above).
struct CommStats {
  int64_t payload_bytes = 0;
  int64_t operations = 0;
  double seconds = 0;  // summed start-to-completion time of the operations
  // The same per operation name ("all_reduce", "broadcast", "all_gather", "all_gather_v",
  // "reduce_scatter", "send", "recv", "barrier").
  std::map<std::string, int64_t> payload_bytes_by_op;
  std::map<std::string, int64_t> operations_by_op;
};

struct CommunicatorOptions {
  Milliseconds timeout{std::chrono::seconds(300)};  // every operation's deadline
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual int rank() const = 0;  // in this group, 0 .. size()-1
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "gloo" or "nccl"
  // The rank in the world of each member of this group, in group order (the identity for the
  // world's own communicator); messages about a peer name its world rank.
  virtual const std::vector<int>& world_ranks() const = 0;

  // In place: every rank ends with the reduction of all ranks' tensors (same shape everywhere).
  virtual WorkHandle all_reduce(Tensor tensor, ReduceOp op = ReduceOp::Sum) = 0;
  // In place: every rank ends with `root`'s tensor.
  virtual WorkHandle broadcast(Tensor tensor, int root) = 0;
  // output (numel size() * input.numel()) gets every rank's input, in rank order.
  virtual WorkHandle all_gather(Tensor input, Tensor output) = 0;
  // Unequal sizes: rank r contributes counts[r] elements (its input's numel); output holds
  // sum(counts) elements, rank 0's first. Every rank passes the same counts.
  virtual WorkHandle all_gather_v(Tensor input, Tensor output, std::vector<int64_t> counts) = 0;
  // input holds size() equal blocks; rank r's output gets the reduction of every rank's block r.
  virtual WorkHandle reduce_scatter(Tensor input, Tensor output, ReduceOp op = ReduceOp::Sum) = 0;
  // Point to point; a recv matches the send from `src` with the same tag, in order.
  virtual WorkHandle send(Tensor tensor, int dst, int tag = 0) = 0;
  virtual WorkHandle recv(Tensor tensor, int src, int tag = 0) = 0;
  // Returns when every rank has called it.
  virtual WorkHandle barrier() = 0;

  // A sub-group: every rank of this communicator calls it with the same list of ranks (of this
  // communicator, in the order the sub-group numbers them). Members get a communicator of
  // ranks.size() ranks; the others get nullptr. Its operations are independent of this one's.
  virtual std::shared_ptr<Communicator> new_group(const std::vector<int>& ranks) = 0;

  CommStats stats() const;
  void reset_stats();
  const CommunicatorOptions& options() const { return options_; }

 protected:
  explicit Communicator(CommunicatorOptions options) : options_(options) {}
  // Backends call these once per operation: when it is started (its payload bytes) and when it
  // has completed (its start-to-completion seconds).
  void count_started(const std::string& op, int64_t payload_bytes);
  void count_completed(double seconds);

  CommunicatorOptions options_;

 private:
  mutable std::mutex stats_mutex_;
  CommStats stats_;
};

// A communicator of `world_size` ranks meeting through `store` (each rank calls it with its own
// rank). backend: "gloo" or "nccl"; an unknown one, or nccl in a build without CUDA, is an error
// that names the choices. `device` (nccl only) is the GPU this rank uses.
std::shared_ptr<Communicator> make_communicator(const std::string& backend,
                                                std::shared_ptr<Store> store, int rank,
                                                int world_size, CommunicatorOptions options = {},
                                                Device device = Device::cpu());

}  // namespace ember::dist
