// What a classifier got right in a batch: the top-1 and top-k counts that the training programs
// turn into accuracies, as PyTorch's ImageNet example computes them (a sample counts for top-k
// when its label is among the k largest logits).
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace ember::app {

struct TopKCounts {
  int64_t samples = 0;
  int64_t top1 = 0;  // samples whose largest logit is the label's
  int64_t topk = 0;  // samples whose label is among the k largest logits
};

// logits [N, C], labels i64 [N] (on the same device). k is cut to C when there are fewer classes
// (top-5 of 3 classes counts every sample). Ties go to the lower class index, as topk's.
TopKCounts count_correct(const Tensor& logits, const Tensor& labels, int64_t k = 5);

}  // namespace ember::app
