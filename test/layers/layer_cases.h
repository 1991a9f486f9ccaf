// The layer cases of the golden files (test/golden/README.md), built as make_golden.py builds
// them; shared by the PyTorch comparisons and the gradient checks.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/normalization.h"
#include "layers/pooling.h"
#include "layers/vit.h"

namespace ember::golden {

using Factory = std::function<std::shared_ptr<nn::Module>()>;

inline const std::map<std::string, Factory>& layer_cases() {
  using namespace nn;
  static const std::map<std::string, Factory> cases = {
      {"linear", [] { return make<Linear>(5, 4); }},
      {"linear_nobias", [] { return make<Linear>(5, 4, false); }},
      {"linear_3d", [] { return make<Linear>(5, 4); }},
      {"conv2d_basic", [] { return make<Conv2d>(3, 4, 3); }},
      {"conv2d_stride_pad", [] { return make<Conv2d>(3, 4, 3, 2, 1); }},
      {"conv2d_dilation_groups", [] { return make<Conv2d>(4, 6, 3, 1, 2, true, 2, 2); }},
      {"conv2d_depthwise_nobias", [] { return make<Conv2d>(4, 4, 3, 1, 1, false, 4); }},
      {"conv2d_rect",
       [] {
         Conv2dConfig c;
         c.kernel_size = {3, 1};
         c.stride = {2, 1};
         c.padding = {1, 0};
         return make<Conv2d>(2, 3, c);
       }},
      {"conv2d_1x1_stride2_nobias", [] { return make<Conv2d>(4, 6, 1, 2, 0, false); }},
      {"conv2d_7x7_stem", [] { return make<Conv2d>(3, 4, 7, 2, 3, false); }},
      {"batchnorm1d", [] { return make<BatchNorm1d>(5); }},
      {"batchnorm1d_seq", [] { return make<BatchNorm1d>(3); }},
      {"batchnorm2d", [] { return make<BatchNorm2d>(3); }},
      {"batchnorm2d_noaffine",
       [] {
         BatchNormConfig c;
         c.affine = false;
         return make<BatchNorm2d>(3, c);
       }},
      {"groupnorm", [] { return make<GroupNorm>(2, 6); }},
      {"groupnorm_single", [] { return make<GroupNorm>(1, 4); }},
      {"groupnorm_1x1", [] { return make<GroupNorm>(2, 8); }},
      {"layernorm", [] { return make<LayerNorm>(8); }},
      {"layernorm_2d",
       [] {
         return make<LayerNorm>(std::vector<int64_t>{4, 5});
       }},
      {"layernorm_noaffine", [] { return make<LayerNorm>(std::vector<int64_t>{8}, 1e-5, false); }},
      {"maxpool", [] { return make<MaxPool2d>(3, 2, 1); }},
      {"maxpool_ceil", [] { return make<MaxPool2d>(2, 0, 0, 1, true); }},
      {"avgpool", [] { return make<AvgPool2d>(3, 2, 1); }},
      {"avgpool_exclude_pad", [] { return make<AvgPool2d>(3, 2, 1, false, false); }},
      {"adaptive_avgpool", [] { return make<AdaptiveAvgPool2d>(3, 2); }},
      {"adaptive_avgpool_1", [] { return make<AdaptiveAvgPool2d>(1); }},
      {"relu", [] { return make<ReLU>(); }},
      {"gelu", [] { return make<GELU>(); }},
      {"gelu_tanh", [] { return make<GELU>("tanh"); }},
      {"mha", [] { return make<MultiheadSelfAttention>(16, 4); }},
      {"linformer_attention", [] { return make<LinformerSelfAttention>(16, 5, 3, 4); }},
      {"patch_embedding", [] { return make<PatchEmbedding>(3, 4, 8); }},
      {"flatten", [] { return make<Flatten>(); }},
  };
  return cases;
}

}  // namespace ember::golden
