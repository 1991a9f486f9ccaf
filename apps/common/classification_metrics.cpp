// Top-1 and top-k counts (see classification_metrics.h).
#include "apps/common/classification_metrics.h"

#include <algorithm>

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"
#include "engine/ops.h"  // topk, eq, sum

namespace ember::app {

TopKCounts count_correct(const Tensor& logits, const Tensor& labels, int64_t k) {
  EMBER_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "count_correct: logits ", shape_str(logits.shape()), " and labels ",
              shape_str(labels.shape()), " must be [N, C] and [N]");
  NoGrad no_grad;
  TopKCounts counts;
  counts.samples = logits.size(0);
  if (counts.samples == 0) return counts;
  k = std::min(k, logits.size(1));
  // hits[i][j] = 1 when the j-th largest logit of sample i is its label's: a sample has at most
  // one hit, so the column sums of the first 1 and first k columns are the two counts.
  const Tensor best = topk(logits.detach(), k, 1).indices;  // [N, k]
  const Tensor hits = eq(best, labels.unsqueeze(1));        // [N, k] u8
  const std::vector<int64_t> per_rank = sum(hits, {0}).to_vector<int64_t>();
  counts.top1 = per_rank[0];
  for (int64_t count : per_rank) counts.topk += count;
  return counts;
}

}  // namespace ember::app
