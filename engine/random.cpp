#include "engine/random.h"

#include "engine/ops_internal.h"  // check_float, kernels_of
#include "kernels/philox.h"       // philox_words_for_uniform/normal

namespace ember {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return offset_;
}

void Generator::set_offset(uint64_t offset) {
  EMBER_CHECK(offset % 4 == 0, "Generator::set_offset: offset ", offset,
              " is not a multiple of 4 (requests start on whole Philox blocks)");
  std::lock_guard<std::mutex> lock(mutex_);
  offset_ = offset;
}

Generator::Draw Generator::reserve(uint64_t words) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Draw draw{seed_, offset_};
  offset_ += (words + 3) / 4 * 4;
  return draw;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
}

Tensor uniform(const Shape& shape, double low, double high, const TensorOptions& options,
               Generator* generator) {
  Tensor t = empty(shape, options.with_requires_grad(false));
  detail::check_float("uniform", t);
  Generator& g = generator ? *generator : default_generator();
  const Generator::Draw draw = g.reserve(kernels::philox_words_for_uniform(t.numel()));
  detail::kernels_of(t).random_uniform(t.dtype(), t.data_ptr(), t.numel(), draw.seed, draw.offset,
                                       low, high, detail::stream_of(t));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& options,
              Generator* generator) {
  Tensor t = empty(shape, options.with_requires_grad(false));
  detail::check_float("normal", t);
  Generator& g = generator ? *generator : default_generator();
  const Generator::Draw draw = g.reserve(kernels::philox_words_for_normal(t.numel()));
  detail::kernels_of(t).random_normal(t.dtype(), t.data_ptr(), t.numel(), draw.seed, draw.offset,
                                      mean, std, detail::stream_of(t));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

}  // namespace ember
