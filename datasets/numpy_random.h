// numpy's legacy random generator (np.random.seed, np.random.RandomState), bit for bit.
//
// Programs ember reproduces split their data with it (the peer-to-peer seed shuffles classes and
// draws shard weights with np.random after np.random.seed(11)), so the split is only the same if
// every draw is. What "legacy" fixes, and what this class copies:
//   - the engine is MT19937 seeded by init_genrand(seed), the 32-bit seeding of the reference
//     implementation: exactly what std::mt19937(seed) does, so the engine is the standard one;
//   - a double takes two words: (a >> 5) · 2^26 + (b >> 6), over 2^53 (random_sample, rand);
//   - a bounded integer in [0, max] masks a word (32-bit when max fits, else two words,
//     high first) down to the smallest all-ones mask covering max and rejects values above it
//     (shuffle's random_interval, and randint on the default int64 dtype);
//   - shuffle walks i from n − 1 down to 1 and swaps element i with random_interval(i).
// numpy_sum copies np.sum's rounding, for weights normalized by it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace ember::data {

class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed) : engine_(seed) {}

  uint32_t next_u32() { return static_cast<uint32_t>(engine_()); }
  // Two words, the first one high (numpy's next_uint64 for MT19937).
  uint64_t next_u64() {
    const uint64_t high = next_u32();
    return (high << 32) | next_u32();
  }
  // np.random.random_sample(): uniform in [0, 1) with 53 random bits.
  double random_sample();
  // np.random.rand(n): n of those.
  std::vector<double> rand(size_t n);
  // Uniform in [0, max], inclusive, by masked rejection; max = 0 draws nothing.
  uint64_t random_interval(uint64_t max);
  // np.random.randint(low, high, size): uniform in [low, high), int64 (the default dtype).
  // A range of one value draws nothing, as numpy.
  std::vector<int64_t> randint(int64_t low, int64_t high, size_t size);
  int64_t randint(int64_t low, int64_t high);
  // np.random.shuffle, in place, on a list or 1-d array.
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i-- > 1;) {
      using std::swap;
      swap(values[i], values[static_cast<size_t>(random_interval(i))]);
    }
  }

 private:
  std::mt19937 engine_;
};

// np.sum of a 1-d float64 array, with numpy's rounding: pairwise summation (eight running sums
// per block of up to 128 values, blocks halved recursively), which differs in the last bits from
// a plain loop once there are 8 values or more.
double numpy_sum(const std::vector<double>& values);

}  // namespace ember::data
