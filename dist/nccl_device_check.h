// Which GPU each rank of an NCCL communicator uses, and the check that no two ranks share one.
//
// NCCL runs one rank per GPU: two ranks on the same GPU fail deep inside ncclCommInitRank (or
// hang). So before joining, every rank publishes the identity of its GPU through the store, a
// (host name, PCI bus id) pair, and every rank runs the same check on the full list: all of
// them refuse together, with a message that names the ranks, rather than some joining and
// others not. The logic is plain code (no CUDA), so a CPU build tests it.
#pragma once

#include <string>
#include <vector>

namespace ember::dist {

// The GPU a rank runs on: a PCI bus id is unique only within one machine, hence the host.
struct GpuIdentity {
  std::string host;    // gethostname()
  std::string bus_id;  // cudaDeviceGetPCIBusId(), e.g. "0000:3b:00.0" (compared case-blind)
};

// The text stored under a rank's key, and back. decode_gpu_identity's error names `key`.
std::string encode_gpu_identity(const GpuIdentity& gpu);
GpuIdentity decode_gpu_identity(const std::string& key, const std::string& text);

// "" when every rank has a GPU of its own; otherwise the error message: the ranks that share
// each GPU, that NCCL cannot put two ranks on one GPU, and to use --dist-backend gloo.
// gpus[i] belongs to world rank world_ranks[i] (an empty world_ranks means rank i).
std::string shared_gpu_message(const std::vector<GpuIdentity>& gpus,
                               const std::vector<int>& world_ranks = {});

}  // namespace ember::dist
