// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11, "Parallel random numbers:
// as easy as 1, 2, 3"), also behind cuRAND's and PyTorch's CUDA generators.
//
// A counter-based generator has no sequential state: the 128 bits for counter c under key k
// are a fixed function philox(c, k). So element i of a tensor can compute its own numbers in
// any order, on any device, and get the same bits. ember's convention (kernels/kernel_table.h):
// the generator's output is a stream of 32-bit words; word w is lane w % 4 of
// philox(counter = w / 4, key = seed).
#pragma once

#include <cstdint>

#include "engine/host_device.h"  // EMBER_HOST_DEVICE

namespace ember::kernels {

struct Philox4 {
  uint32_t x[4];
};

EMBER_HOST_DEVICE inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Ten rounds; constants from the paper (Random123's philox.h).
EMBER_HOST_DEVICE inline Philox4 philox4x32_10(Philox4 counter, uint32_t key0, uint32_t key1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // round multipliers
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt 3)
  uint32_t* c = counter.x;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, c[0], hi0, lo0);
    philox_mulhilo(M1, c[2], hi1, lo1);
    uint32_t next[4] = {hi1 ^ c[1] ^ key0, lo1, hi0 ^ c[3] ^ key1, lo0};
    c[0] = next[0];
    c[1] = next[1];
    c[2] = next[2];
    c[3] = next[3];
    key0 += W0;
    key1 += W1;
  }
  return counter;
}

// The block of four words that holds word `w` of the stream keyed by `seed`.
EMBER_HOST_DEVICE inline Philox4 philox_block(uint64_t seed, uint64_t block) {
  Philox4 counter = {{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

EMBER_HOST_DEVICE inline uint32_t philox_word(uint64_t seed, uint64_t w) {
  return philox_block(seed, w / 4).x[w % 4];
}

// Uniform in [0, 1) from the top 24 bits of a word: exactly representable in float, so the CPU
// and CUDA give identical floats. Doubles use the same 24 bits (gradient-check inputs need no
// more) so that rand in f64 equals rand in f32, converted.
EMBER_HOST_DEVICE inline float word_to_uniform(uint32_t w) {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}
// Uniform in (0, 1]: safe to take the log of.
EMBER_HOST_DEVICE inline float word_to_uniform_open0(uint32_t w) {
  return static_cast<float>((w >> 8) + 1) * (1.0f / 16777216.0f);
}

// Number of words a request of n elements consumes, rounded up to whole blocks so that the
// next request starts on a fresh block. Normals use two words per element pair (Box-Muller).
inline uint64_t philox_words_for_uniform(int64_t n) {
  return (static_cast<uint64_t>(n) + 3) / 4 * 4;
}
inline uint64_t philox_words_for_normal(int64_t n) {
  return philox_words_for_uniform(2 * ((n + 1) / 2));
}

}  // namespace ember::kernels
