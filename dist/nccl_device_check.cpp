// The one-GPU-per-rank check of the NCCL backend (see nccl_device_check.h).
#include "dist/nccl_device_check.h"

#include <cctype>
#include <map>
#include <utility>

#include "engine/error.h"

namespace ember::dist {

namespace {

// PCI bus ids are hexadecimal: "0000:3B:00.0" and "0000:3b:00.0" name the same GPU.
std::string lower_case(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string join_ranks(const std::vector<int>& ranks) {
  std::string text;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) text += (i + 1 == ranks.size()) ? " and " : ", ";
    text += std::to_string(ranks[i]);
  }
  return text;
}

}  // namespace

// One line, host first: a host name holds no newline, so the first one separates the two.
std::string encode_gpu_identity(const GpuIdentity& gpu) {
  return gpu.host + "\n" + gpu.bus_id;
}

GpuIdentity decode_gpu_identity(const std::string& key, const std::string& text) {
  const size_t split = text.find('\n');
  EMBER_CHECK(split != std::string::npos && split > 0 && split + 1 < text.size(),
              "nccl: the value of store key ", key, " is not a GPU identity (host name, newline, ",
              "PCI bus id): \"", text, "\"");
  return {text.substr(0, split), text.substr(split + 1)};
}

std::string shared_gpu_message(const std::vector<GpuIdentity>& gpus,
                               const std::vector<int>& world_ranks) {
  EMBER_CHECK(world_ranks.empty() || world_ranks.size() == gpus.size(), "nccl: ", gpus.size(),
              " GPU identities for ", world_ranks.size(), " ranks");
  // The ranks on each GPU, in rank order (std::map: the message lists GPUs in a fixed order).
  std::map<std::pair<std::string, std::string>, std::vector<int>> ranks_by_gpu;
  std::vector<std::pair<std::string, std::string>> order;  // GPUs in order of their first rank
  for (size_t i = 0; i < gpus.size(); ++i) {
    const auto gpu = std::make_pair(gpus[i].host, lower_case(gpus[i].bus_id));
    auto& ranks = ranks_by_gpu[gpu];
    if (ranks.empty()) order.push_back(gpu);
    ranks.push_back(world_ranks.empty() ? static_cast<int>(i) : world_ranks[i]);
  }
  std::string shared;
  for (const auto& gpu : order) {
    const std::vector<int>& ranks = ranks_by_gpu[gpu];
    if (ranks.size() < 2) continue;
    shared += str_cat(shared.empty() ? "" : "; ", "ranks ", join_ranks(ranks),
                      " are on the same GPU (host ", gpu.first, ", PCI bus ", gpu.second, ")");
  }
  if (shared.empty()) return "";
  return str_cat("nccl: ", shared,
                 ". NCCL cannot put two ranks on one GPU: give each rank a GPU of its own "
                 "(--device, or LOCAL_RANK with one process per GPU) or use --dist-backend gloo, "
                 "which lets several processes share a GPU");
}

}  // namespace ember::dist
