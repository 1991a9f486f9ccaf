// Random numbers: a counter-based Philox generator (kernels/philox.h) that gives the same
// numbers on the CPU and on CUDA for the same seed and offset.
//
// A Generator is a (seed, offset) pair. Each request reserves a range of the generator's word
// stream and advances the offset past it; the kernel computes element i from
// (seed, offset + i) alone. One default generator serves every device, so a program seeded
// with manual_seed draws the same numbers whether it runs on the CPU or on a GPU.
#pragma once

#include <cstdint>
#include <mutex>

#include "engine/tensor.h"

namespace ember {

class Generator {
 public:
  static constexpr uint64_t kDefaultSeed = 67280421310721ULL;

  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}

  void manual_seed(uint64_t seed);  // also rewinds the offset to 0
  uint64_t seed() const;
  uint64_t offset() const;
  void set_offset(uint64_t offset);  // restoring a saved state (checkpoints)

  // Reserves `words` 32-bit words of the stream: the seed, and the offset of the first word.
  struct Draw {
    uint64_t seed;
    uint64_t offset;
  };
  Draw reserve(uint64_t words);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

// Uniform on [low, high) / normal with mean and std; f32 or f64.
Tensor uniform(const Shape& shape, double low, double high, const TensorOptions& options = {},
               Generator* generator = nullptr);
Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& options = {},
              Generator* generator = nullptr);
inline Tensor rand(const Shape& shape, const TensorOptions& options = {},
                   Generator* generator = nullptr) {
  return uniform(shape, 0, 1, options, generator);
}
inline Tensor randn(const Shape& shape, const TensorOptions& options = {},
                    Generator* generator = nullptr) {
  return normal(shape, 0, 1, options, generator);
}

}  // namespace ember
