// Multi-head and Linformer self-attention (see attention.h for the equations).
#include "layers/attention.h"

#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/init.h"

namespace ember::nn {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                    double dropout_p, bool training) {
  const Tensor weights = softmax(matmul(q, k.transpose(-2, -1)) * scale, -1);
  return matmul(dropout(weights, dropout_p, training), v);
}

namespace {
void check_tokens(const char* module, const Tensor& x, int64_t dim) {
  EMBER_CHECK(x.dim() == 3 && x.size(2) == dim, module, ": input ", shape_str(x.shape()),
              " must be [batch, tokens, ", dim, "]");
}
// [b, n, heads * d] -> [b, heads, n, d]
Tensor split_heads(const Tensor& t, int64_t heads) {
  return t.reshape({t.size(0), t.size(1), heads, -1}).transpose(1, 2);
}
// [b, heads, n, d] -> [b, n, heads * d]
Tensor merge_heads(const Tensor& t) {
  return t.transpose(1, 2).reshape({t.size(0), t.size(2), -1});
}
}  // namespace

// ---- MultiheadSelfAttention ----

MultiheadSelfAttention::MultiheadSelfAttention(int64_t dim, int64_t heads, double dropout,
                                               bool bias)
    : dim(dim), heads(heads), dropout_p(dropout) {
  EMBER_CHECK(dim > 0 && heads > 0 && dim % heads == 0, "MultiheadAttention: dim (", dim,
              ") must be a positive multiple of heads (", heads, ")");
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * dim, dim}));
  init::xavier_uniform_(in_proj_weight);
  if (bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * dim}));
  out_proj = register_module("out_proj", make<Linear>(dim, dim, bias));
  if (bias) init::zeros_(out_proj->bias);
}

Tensor MultiheadSelfAttention::forward(const Tensor& x) {
  check_tokens("MultiheadAttention", x, dim);
  Tensor qkv = matmul(x, in_proj_weight.t());
  if (in_proj_bias.defined()) qkv = qkv + in_proj_bias;
  const std::vector<Tensor> parts = chunk(qkv, 3, -1);
  const double scale = 1 / std::sqrt(static_cast<double>(dim / heads));
  const Tensor out =
      scaled_dot_product_attention(split_heads(parts[0], heads), split_heads(parts[1], heads),
                                   split_heads(parts[2], heads), scale, dropout_p, is_training());
  return (*out_proj)(merge_heads(out));
}

std::string MultiheadSelfAttention::extra_repr() const {
  return str_cat("embed_dim=", dim, ", num_heads=", heads, ", dropout=", dropout_p);
}

// ---- LinformerSelfAttention ----

LinformerSelfAttention::LinformerSelfAttention(int64_t dim, int64_t seq_len, int64_t k,
                                               int64_t heads, int64_t dim_head, double dropout_p)
    : seq_len(seq_len), k(k), heads(heads), dim_head(dim_head > 0 ? dim_head : dim / heads) {
  EMBER_CHECK(dim > 0 && heads > 0 && dim % heads == 0, "LinformerSelfAttention: dim (", dim,
              ") must be a positive multiple of heads (", heads, ")");
  EMBER_CHECK(seq_len > 0 && k > 0, "LinformerSelfAttention: seq_len (", seq_len, ") and k (", k,
              ") must be positive");
  // The projections are U(-1/sqrt(k), 1/sqrt(k)), as the reference implementation's init_.
  const double bound = 1 / std::sqrt(static_cast<double>(k));
  proj_k = register_parameter("proj_k", empty({seq_len, k}));
  init::uniform_(proj_k, -bound, bound);
  proj_v = register_parameter("proj_v", empty({seq_len, k}));
  init::uniform_(proj_v, -bound, bound);
  const int64_t inner = this->dim_head * heads;
  to_q = register_module("to_q", make<Linear>(dim, inner, false));
  to_k = register_module("to_k", make<Linear>(dim, inner, false));
  to_v = register_module("to_v", make<Linear>(dim, inner, false));
  dropout = register_module("dropout", make<Dropout>(dropout_p));
  to_out = register_module("to_out", make<Linear>(inner, dim));
}

Tensor LinformerSelfAttention::forward(const Tensor& x) {
  check_tokens("LinformerSelfAttention", x, to_q->in_features);
  EMBER_CHECK(x.size(1) == seq_len, "LinformerSelfAttention: the sequence has ", x.size(1),
              " tokens, the projections were built for seq_len ", seq_len);
  // Project keys and values along the sequence axis: [b, n, d] -> [b, k, d].
  auto project = [](const Tensor& t, const Tensor& proj) {
    return matmul(t.transpose(1, 2), proj).transpose(1, 2);
  };
  const Tensor q = split_heads((*to_q)(x), heads);
  const Tensor keys = split_heads(project((*to_k)(x), proj_k), heads);
  const Tensor values = split_heads(project((*to_v)(x), proj_v), heads);
  const double scale = 1 / std::sqrt(static_cast<double>(dim_head));
  const Tensor out =
      scaled_dot_product_attention(q, keys, values, scale, dropout->p, is_training());
  return (*to_out)(merge_heads(out));
}

}  // namespace ember::nn
