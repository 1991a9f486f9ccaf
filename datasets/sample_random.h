// Random numbers for one example's augmentation, decided by (seed, epoch, index) alone.
//
// A DataLoader hands examples to whichever worker thread is free, so a generator shared by
// the workers would give an example different crops depending on timing and thread count.
// Instead each example gets its own Philox stream, keyed by the loader's seed and counted from
// (epoch, index): the same seed gives the same augmentations with 0, 1 or 16 workers.
#pragma once

#include <cstdint>

#include "kernels/philox.h"

namespace ember::data {

class SampleRandom {
 public:
  SampleRandom(uint64_t seed, uint64_t epoch, uint64_t index)
      : seed_(seed), epoch_(static_cast<uint32_t>(epoch)), index_(index) {}

  uint32_t next_u32() {
    if (lane_ == 4) {
      // Counter words: the example index (64 bits), the epoch, and a block number, so that
      // streams of different examples and epochs never overlap.
      kernels::Philox4 counter = {
          {static_cast<uint32_t>(index_), static_cast<uint32_t>(index_ >> 32), epoch_, block_++}};
      block_words_ = kernels::philox4x32_10(counter, static_cast<uint32_t>(seed_),
                                            static_cast<uint32_t>(seed_ >> 32));
      lane_ = 0;
    }
    return block_words_.x[lane_++];
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() {
    const uint64_t high = next_u32() >> 5, low = next_u32() >> 6;  // 27 + 26 bits
    return (static_cast<double>(high) * 67108864.0 + static_cast<double>(low)) *
           (1.0 / 9007199254740992.0);
  }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Uniform integer in [low, high], inclusive, without modulo bias.
  int64_t integer(int64_t low, int64_t high) {
    const uint64_t span = static_cast<uint64_t>(high - low) + 1;
    if (span == 0 || span > 0xFFFFFFFFull) return low + static_cast<int64_t>(next_u32());
    const uint32_t limit = static_cast<uint32_t>(0x100000000ull - 0x100000000ull % span);
    uint32_t word;
    do word = next_u32();
    while (limit != 0 && word >= limit);
    return low + static_cast<int64_t>(word % span);
  }
  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t seed_;
  uint32_t epoch_;
  uint64_t index_;
  uint32_t block_ = 0;
  kernels::Philox4 block_words_{};
  int lane_ = 4;  // 4: no words left in block_words_
};

}  // namespace ember::data
