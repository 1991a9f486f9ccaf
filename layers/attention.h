// Self-attention layers over sequences [batch, tokens, dim].
//
// MultiheadSelfAttention is torch.nn.MultiheadAttention(dim, heads, batch_first=True) used as
// attn(x, x, x) without masks, with its parameter names (in_proj_weight [3*dim, dim],
// in_proj_bias, out_proj.weight, out_proj.bias) and initialization (xavier-uniform in_proj,
// zero biases). For queries, keys and values of head h (Q = x Wq^T + bq, ...):
//   A = softmax(Q K^T / sqrt(dim_head)),   out = concat_h(A V) Wo^T + bo.
//
// LinformerSelfAttention (Wang et al. 2020, as lucidrains' `linformer` package, whose names it
// keeps: to_q, to_k, to_v without bias, proj_k and proj_v [seq_len, k], to_out) first projects
// the keys and values along the sequence axis with learned [seq_len, k] matrices:
//   K' = E^T K  (k x d),  V' = F^T V,  A = softmax(Q K'^T / sqrt(dim_head))  (n x k),
// so attention costs O(n k) instead of O(n^2). The input must have exactly seq_len tokens.
#pragma once

#include <memory>

#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace ember::nn {

class MultiheadSelfAttention : public Module {
 public:
  MultiheadSelfAttention(int64_t dim, int64_t heads, double dropout = 0, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;

  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
  int64_t dim, heads;
  double dropout_p;
};

class LinformerSelfAttention : public Module {
 public:
  LinformerSelfAttention(int64_t dim, int64_t seq_len, int64_t k = 256, int64_t heads = 8,
                         int64_t dim_head = 0 /* dim / heads */, double dropout = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LinformerSelfAttention"; }

  Tensor proj_k, proj_v;  // [seq_len, k]
  std::shared_ptr<Linear> to_q, to_k, to_v, to_out;
  std::shared_ptr<Dropout> dropout;
  int64_t seq_len, k, heads, dim_head;
};

// softmax(q k^T * scale) v over the last two dims, with dropout on the attention weights:
// q [..., n, d], k and v [..., m, d]. Shared by both layers.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                    double dropout_p, bool training);

}  // namespace ember::nn
