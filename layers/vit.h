// Vision Transformer with Linformer attention: the dAD seed's model for dogs-vs-cats, as
// lucidrains' vit_pytorch.efficient.ViT around linformer.Linformer, with their names:
//
//   to_patch_embedding   0: patches 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', 1: Linear
//   cls_token [1, 1, dim], pos_embedding [1, patches + 1, dim]   (both N(0, 1) at start)
//   transformer.net.layers.{i}.0 = PreNorm(LinformerSelfAttention)   x = x + attn(norm(x))
//   transformer.net.layers.{i}.1 = PreNorm(FeedForward)              x = x + ff(norm(x))
//   mlp_head             0: LayerNorm, 1: Linear(dim, classes), on the CLS token
//
// vit_linformer: image 224, patch 32 (49 patches + CLS = 50 tokens), dim 128, depth 12,
// heads 8 (dim_head 16), k 64, MLP 128 -> 512 -> 128 with GELU; 2,851,842 parameters.
#pragma once

#include <memory>

#include "layers/attention.h"
#include "layers/container.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/normalization.h"

namespace ember::nn {

// [N, C, H, W] -> [N, (H/p)(W/p), p*p*C]: each patch flattened row by row, channels fastest.
class PatchRearrange : public Module {
 public:
  explicit PatchRearrange(int64_t patch_size) : patch_size(patch_size) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Rearrange"; }
  std::string extra_repr() const override;
  int64_t patch_size;
};

// Patch embedding: PatchRearrange then Linear(p*p*C, dim), named "0" and "1".
class PatchEmbedding : public Sequential {
 public:
  PatchEmbedding(int64_t channels, int64_t patch_size, int64_t dim);
};

// fn(norm(x)): fn registered before norm, as in the reference code (names fn.*, norm.*).
class PreNorm : public Module {
 public:
  PreNorm(int64_t dim, std::shared_ptr<Module> fn);
  Tensor forward(const Tensor& x) override { return (*fn)((*norm)(x)); }
  std::string type_name() const override { return "PreNorm"; }
  std::shared_ptr<Module> fn;
  std::shared_ptr<LayerNorm> norm;
};

// w2(dropout(gelu(w1(x)))), w1: dim -> mult*dim.
class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t mult = 4, double dropout = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "FeedForward"; }
  std::shared_ptr<Module> w1, act, dropout, w2;
};

struct LinformerConfig {
  int64_t dim = 128, seq_len = 50, depth = 12, k = 64, heads = 8;
  double dropout = 0;
};

// depth x (x + attn(norm(x)), x + ff(norm(x))), kept as net.layers.{i}.{0,1}.
class Linformer : public Module {
 public:
  explicit Linformer(const LinformerConfig& config);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linformer"; }
  std::shared_ptr<ModuleList> layers;  // net.layers
};

struct ViTConfig {
  int64_t image_size = 224, patch_size = 32, num_classes = 2, dim = 128, channels = 3;
  LinformerConfig transformer;  // seq_len must be patches + 1
};

class ViT : public Module {
 public:
  explicit ViT(const ViTConfig& config);
  Tensor forward(const Tensor& images) override;
  std::string type_name() const override { return "ViT"; }
  ViTConfig config;
  Tensor pos_embedding, cls_token;
  std::shared_ptr<PatchEmbedding> to_patch_embedding;
  std::shared_ptr<Linformer> transformer;
  std::shared_ptr<Module> to_latent;
  std::shared_ptr<Sequential> mlp_head;
};

}  // namespace ember::nn
