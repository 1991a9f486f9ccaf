// Samplers decide which examples an epoch visits, and in which order.
//
// A sampler maps an epoch number to a list of data-set indices; the same (sampler, epoch)
// always gives the same list, so runs are reproducible and resumable mid-training. The
// DataLoader cuts each list into batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The indices visited in epoch `epoch` (0-based), in order.
  virtual std::vector<size_t> epoch_indices(int64_t epoch) const = 0;
  // The length of every epoch's list.
  virtual size_t size() const = 0;
};

// ---- concrete samplers ---------------------------------------------------------------------
// (declared and implemented in sampler.cpp)

}  // namespace ember::data
