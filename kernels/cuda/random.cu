// Random numbers on CUDA from the counter-based Philox generator (kernels/philox.h), giving the
// CPU's numbers: element i of a uniform request is word offset + i of the stream keyed by seed.
//
// One Philox evaluation yields a block of four consecutive words (words 4b .. 4b + 3), so each
// thread takes one block and produces the elements whose words fall in it: up to four uniforms,
// or up to two Box-Muller pairs (a pair, elements 2p and 2p + 1, uses words offset + 2p and
// offset + 2p + 1; when offset is odd a pair may straddle two blocks, and its second word is
// then computed on its own).
//
// Bit-identical floats need one care: nvcc fuses a * b + c into one fused multiply-add (one
// rounding instead of two) where the CPU rounds twice. __fmul_rn/__fadd_rn (and the double
// versions) are never fused, so low + span * u rounds exactly as on the CPU.
#include <cstdint>

#include "kernels/cuda/launch.cuh"  // grid_size, first_thread_index
#include "kernels/dispatch.h"       // dispatch
#include "kernels/philox.h"         // philox_block, philox_word, word_to_uniform

namespace ember::cuda {

namespace {

// The Philox blocks that hold words [offset, offset + words), words > 0.
struct BlockRange {
  uint64_t first;
  int64_t count;
};
BlockRange blocks_for_words(uint64_t offset, uint64_t words) {
  const uint64_t first = offset / 4, last = (offset + words - 1) / 4;
  return {first, static_cast<int64_t>(last - first + 1)};
}

__global__ void random_uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset,
                                      float low, float span, BlockRange blocks) {
  for (int64_t t = first_thread_index(); t < blocks.count; t += total_threads()) {
    const uint64_t block = blocks.first + static_cast<uint64_t>(t);
    const kernels::Philox4 words = kernels::philox_block(seed, block);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t word = 4 * block + lane;
      if (word < offset || word - offset >= static_cast<uint64_t>(n)) continue;
      out[word - offset] = __fadd_rn(low, __fmul_rn(span, kernels::word_to_uniform(words.x[lane])));
    }
  }
}

// Box-Muller: r = sqrt(-2 log u1), theta = 2 pi u2; element 2p is r cos(theta), 2p + 1 is
// r sin(theta); then mean + std * z in double, as on the CPU.
__global__ void random_normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset,
                                     double mean, double std, BlockRange blocks) {
  for (int64_t t = first_thread_index(); t < blocks.count; t += total_threads()) {
    const uint64_t block = blocks.first + static_cast<uint64_t>(t);
    const kernels::Philox4 words = kernels::philox_block(seed, block);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t word = 4 * block + lane;
      if (word < offset) continue;
      const uint64_t element = word - offset;  // the pair's first element, if even
      if (element % 2 != 0 || element >= static_cast<uint64_t>(n)) continue;
      const uint32_t second_word =
          lane < 3 ? words.x[lane + 1] : kernels::philox_word(seed, word + 1);
      const float u1 = kernels::word_to_uniform_open0(words.x[lane]);
      const float u2 = kernels::word_to_uniform(second_word);
      const float radius = sqrtf(-2.0f * logf(u1));
      const float theta = 6.2831853071795865f * u2;
      const float z0 = radius * cosf(theta), z1 = radius * sinf(theta);
      out[element] = static_cast<float>(__dadd_rn(mean, __dmul_rn(std, static_cast<double>(z0))));
      if (element + 1 < static_cast<uint64_t>(n))
        out[element + 1] =
            static_cast<float>(__dadd_rn(mean, __dmul_rn(std, static_cast<double>(z1))));
    }
  }
}

// mask[i] = (u_i >= p) / (1 - p), y = x * mask, u_i the uniform random_uniform would draw.
__global__ void dropout_kernel(const float* x, float* y, float* mask, int64_t n, float threshold,
                               float keep_scale, uint64_t seed, uint64_t offset,
                               BlockRange blocks) {
  for (int64_t t = first_thread_index(); t < blocks.count; t += total_threads()) {
    const uint64_t block = blocks.first + static_cast<uint64_t>(t);
    const kernels::Philox4 words = kernels::philox_block(seed, block);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t word = 4 * block + lane;
      if (word < offset || word - offset >= static_cast<uint64_t>(n)) continue;
      const uint64_t i = word - offset;
      const float keep = kernels::word_to_uniform(words.x[lane]) >= threshold ? keep_scale : 0.0f;
      mask[i] = keep;
      y[i] = x[i] * keep;
    }
  }
}

}  // namespace

void random_uniform(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset, double low,
                    double high, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "random_uniform", [&](auto) {
    const BlockRange blocks = blocks_for_words(offset, static_cast<uint64_t>(n));
    random_uniform_kernel<<<grid_size(blocks.count), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<float*>(out), n, seed, offset, static_cast<float>(low),
        static_cast<float>(high - low), blocks);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void random_normal(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                   double std, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "random_normal", [&](auto) {
    const uint64_t words = 2 * ((static_cast<uint64_t>(n) + 1) / 2);  // two per pair
    const BlockRange blocks = blocks_for_words(offset, words);
    random_normal_kernel<<<grid_size(blocks.count), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<float*>(out), n, seed, offset, mean, std, blocks);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void dropout(DType dtype, const void* x, void* y, void* mask, int64_t n, double p, uint64_t seed,
             uint64_t offset, Stream stream) {
  if (n == 0) return;
  dispatch<float>(dtype, "dropout", [&](auto) {
    const float keep_scale = static_cast<float>(p < 1 ? 1.0 / (1.0 - p) : 0.0);  // p = 1 drops all
    const BlockRange blocks = blocks_for_words(offset, static_cast<uint64_t>(n));
    dropout_kernel<<<grid_size(blocks.count), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<const float*>(x), static_cast<float*>(y), static_cast<float*>(mask), n,
        static_cast<float>(p), keep_scale, seed, offset, blocks);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
