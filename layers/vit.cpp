// ViT with Linformer attention (see vit.h).
#include "layers/vit.h"

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/dropout.h"
#include "layers/init.h"

namespace ember::nn {

Tensor PatchRearrange::forward(const Tensor& x) {
  const int64_t p = patch_size;
  EMBER_CHECK(x.dim() == 4 && x.size(2) % p == 0 && x.size(3) % p == 0, "Rearrange: images ",
              shape_str(x.shape()), " must be [N, C, H, W] with H and W multiples of ", p);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2) / p, w = x.size(3) / p;
  // [n, c, h, p1, w, p2] -> [n, h, w, p1, p2, c]
  return x.reshape({n, c, h, p, w, p}).permute({0, 2, 4, 3, 5, 1}).reshape({n, h * w, p * p * c});
}

std::string PatchRearrange::extra_repr() const {
  return str_cat("'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=", patch_size, ", p2=", patch_size);
}

PatchEmbedding::PatchEmbedding(int64_t channels, int64_t patch_size, int64_t dim) {
  push_back(make<PatchRearrange>(patch_size));
  push_back(make<Linear>(channels * patch_size * patch_size, dim));
}

PreNorm::PreNorm(int64_t dim, std::shared_ptr<Module> module) {
  fn = register_module("fn", std::move(module));
  norm = register_module("norm", make<LayerNorm>(dim));
}

FeedForward::FeedForward(int64_t dim, int64_t mult, double dropout_p) {
  w1 = register_module("w1", make<Linear>(dim, dim * mult));
  act = register_module("act", make<GELU>());
  dropout = register_module("dropout", make<Dropout>(dropout_p));
  w2 = register_module("w2", make<Linear>(dim * mult, dim));
}

Tensor FeedForward::forward(const Tensor& x) {
  return (*w2)((*dropout)((*act)((*w1)(x))));
}

namespace {
// The reference keeps its layers as Linformer.net (a SequentialSequence) .layers.
class SequentialSequence : public Module {
 public:
  explicit SequentialSequence(std::shared_ptr<ModuleList> layers) {
    this->layers = register_module("layers", std::move(layers));
  }
  Tensor forward(const Tensor& input) override {
    Tensor x = input;
    for (size_t i = 0; i < layers->size(); ++i) {
      auto& pair = static_cast<ModuleList&>((*layers)[i]);
      x = x + pair[0](x);
      x = x + pair[1](x);
    }
    return x;
  }
  std::string type_name() const override { return "SequentialSequence"; }
  std::shared_ptr<ModuleList> layers;
};
}  // namespace

Linformer::Linformer(const LinformerConfig& cfg) {
  layers = make<ModuleList>();
  for (int64_t i = 0; i < cfg.depth; ++i) {
    auto pair = make<ModuleList>();
    pair->push_back(make<PreNorm>(
        cfg.dim,
        make<LinformerSelfAttention>(cfg.dim, cfg.seq_len, cfg.k, cfg.heads, 0, cfg.dropout)));
    pair->push_back(make<PreNorm>(cfg.dim, make<FeedForward>(cfg.dim, 4, cfg.dropout)));
    layers->push_back(pair);
  }
  register_module("net", make<SequentialSequence>(layers));
}

Tensor Linformer::forward(const Tensor& x) {
  return named_children().front().second->operator()(x);
}

ViT::ViT(const ViTConfig& cfg) : config(cfg) {
  EMBER_CHECK(cfg.image_size % cfg.patch_size == 0, "ViT: image size ", cfg.image_size,
              " is not a multiple of the patch size ", cfg.patch_size);
  const int64_t side = cfg.image_size / cfg.patch_size;
  const int64_t tokens = side * side + 1;
  EMBER_CHECK(cfg.transformer.seq_len == tokens, "ViT: the transformer's seq_len (",
              cfg.transformer.seq_len, ") must be the number of patches + 1 (", tokens, ")");
  to_patch_embedding = register_module("to_patch_embedding",
                                       make<PatchEmbedding>(cfg.channels, cfg.patch_size, cfg.dim));
  pos_embedding = register_parameter("pos_embedding", empty({1, tokens, cfg.dim}));
  init::normal_(pos_embedding, 0, 1);
  cls_token = register_parameter("cls_token", empty({1, 1, cfg.dim}));
  init::normal_(cls_token, 0, 1);
  transformer = register_module("transformer", make<Linformer>(cfg.transformer));
  to_latent = register_module("to_latent", make<Identity>());
  mlp_head = register_module(
      "mlp_head", make<Sequential>(std::vector<std::shared_ptr<Module>>{
                      make<LayerNorm>(cfg.dim), make<Linear>(cfg.dim, cfg.num_classes)}));
}

Tensor ViT::forward(const Tensor& images) {
  EMBER_CHECK(images.dim() == 4 && images.size(1) == config.channels &&
                  images.size(2) == config.image_size && images.size(3) == config.image_size,
              "ViT: images ", shape_str(images.shape()), " must be [N, ", config.channels, ", ",
              config.image_size, ", ", config.image_size, "]");
  Tensor x = (*to_patch_embedding)(images);
  const int64_t n = x.size(0), tokens = x.size(1) + 1;
  x = cat({cls_token.expand({n, 1, config.dim}), x}, 1);
  x = x + pos_embedding.narrow(1, 0, tokens);
  x = (*transformer)(x);
  return (*mlp_head)((*to_latent)(x.select(1, 0)));
}

}  // namespace ember::nn
