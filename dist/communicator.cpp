// What every backend shares (see communicator.h): statistics and the factory.
#include "dist/communicator.h"

#include "dist/gloo_communicator.h"
#include "engine/error.h"
#ifdef EMBER_WITH_NCCL
#include "dist/nccl_communicator.h"
#endif

namespace ember::dist {

std::string reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Average:
      return "average";
    case ReduceOp::Max:
      return "max";
    case ReduceOp::Min:
      return "min";
  }
  return "?";
}

CommStats Communicator::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

void Communicator::reset_stats() {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_ = CommStats{};
}

void Communicator::count_started(const std::string& op, int64_t payload_bytes) {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_.payload_bytes += payload_bytes;
  stats_.operations += 1;
  stats_.payload_bytes_by_op[op] += payload_bytes;
  stats_.operations_by_op[op] += 1;
}

void Communicator::count_completed(double seconds) {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_.seconds += seconds;
}

std::shared_ptr<Communicator> make_communicator(const std::string& backend,
                                                std::shared_ptr<Store> store, int rank,
                                                int world_size, CommunicatorOptions options,
                                                Device device) {
  EMBER_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "communicator: rank ", rank,
              " is outside a world of size ", world_size);
  if (backend == "gloo") return make_gloo_communicator(std::move(store), rank, world_size, options);
  if (backend == "nccl") {
#ifdef EMBER_WITH_NCCL
    return make_nccl_communicator(std::move(store), rank, world_size, options, device);
#else
    (void)device;
    throw Error(
        "--dist-backend nccl: this ember was built without CUDA (make CUDA=0), so NCCL "
        "is not available; use --dist-backend gloo");
#endif
  }
  throw Error(
      str_cat("--dist-backend ", backend, ": unknown backend; the choices are gloo and nccl"));
}

}  // namespace ember::dist
