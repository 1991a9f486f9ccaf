#include "datasets/numpy_random.h"

#include "engine/error.h"

namespace ember::data {

namespace {
// The smallest 2^k − 1 that is >= value.
uint64_t covering_mask(uint64_t value) {
  uint64_t mask = value;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  return mask;
}
}  // namespace

double NumpyRandomState::random_sample() {
  const uint32_t high = next_u32() >> 5, low = next_u32() >> 6;  // 27 + 26 bits
  return (high * 67108864.0 + low) / 9007199254740992.0;
}

std::vector<double> NumpyRandomState::rand(size_t n) {
  std::vector<double> values(n);
  for (double& value : values) value = random_sample();
  return values;
}

uint64_t NumpyRandomState::random_interval(uint64_t max) {
  if (max == 0) return 0;
  const uint64_t mask = covering_mask(max);
  uint64_t value;
  if (max <= 0xFFFFFFFFull) {
    do value = next_u32() & mask;
    while (value > max);
  } else {
    do value = next_u64() & mask;
    while (value > max);
  }
  return value;
}

std::vector<int64_t> NumpyRandomState::randint(int64_t low, int64_t high, size_t size) {
  EMBER_CHECK(low < high, "randint: low (", low, ") must be below high (", high, ")");
  // The range as numpy holds it: the largest offset, high − 1 − low, in unsigned 64 bits.
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) - 1;
  std::vector<int64_t> values(size);
  for (int64_t& value : values)
    value = static_cast<int64_t>(static_cast<uint64_t>(low) + random_interval(range));
  return values;
}

int64_t NumpyRandomState::randint(int64_t low, int64_t high) {
  return randint(low, high, 1)[0];
}

namespace {
double pairwise_sum(const double* values, size_t n) {
  if (n < 8) {
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += values[i];
    return sum;
  }
  if (n <= 128) {
    double partial[8];
    for (int j = 0; j < 8; ++j) partial[j] = values[j];
    size_t i = 8;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) partial[j] += values[i + j];
    double sum = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                 ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    for (; i < n; ++i) sum += values[i];
    return sum;
  }
  size_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(values, half) + pairwise_sum(values + half, n - half);
}
}  // namespace

// The reduction starts from add's identity, 0, and adds the pairwise sum of all the values.
double numpy_sum(const std::vector<double>& values) {
  return 0.0 + pairwise_sum(values.data(), values.size());
}

}  // namespace ember::data
