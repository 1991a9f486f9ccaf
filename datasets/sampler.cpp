#include "datasets/sampler.h"

#include <numeric>

#include "engine/error.h"

namespace ember::data {

namespace {

void check_epoch(const char* sampler, int64_t epoch) {
  EMBER_CHECK(epoch >= 0, sampler, ": epoch ", epoch, " is negative");
}

// Uniform in [0, bound], unbiased also for bounds past 32 bits (rejection on 64-bit draws).
uint64_t uniform_up_to(SampleRandom& random, uint64_t bound) {
  if (bound <= 0xFFFFFFFEull) return static_cast<uint64_t>(random.integer(0, bound));
  const uint64_t span = bound + 1;  // 0 when bound is 2^64 − 1: every word is fine
  const uint64_t limit = span == 0 ? 0 : UINT64_MAX - UINT64_MAX % span;
  uint64_t word;
  do {
    word = (static_cast<uint64_t>(random.next_u32()) << 32) | random.next_u32();
  } while (limit != 0 && word >= limit);
  return span == 0 ? word : word % span;
}

}  // namespace

void shuffle_in_place(std::vector<size_t>& values, SampleRandom& random) {
  for (size_t i = values.size(); i-- > 1;) std::swap(values[i], values[uniform_up_to(random, i)]);
}

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  SampleRandom random(seed, static_cast<uint64_t>(epoch), 0);
  shuffle_in_place(order, random);
  return order;
}

std::vector<size_t> SequentialSampler::epoch_indices(int64_t epoch) const {
  check_epoch("SequentialSampler", epoch);
  std::vector<size_t> order(n_);
  std::iota(order.begin(), order.end(), size_t{0});
  return order;
}

std::vector<size_t> RandomSampler::epoch_indices(int64_t epoch) const {
  check_epoch("RandomSampler", epoch);
  return seeded_permutation(n_, seed_, epoch);
}

DistributedSampler::DistributedSampler(size_t n, int world_size, int rank, bool shuffle,
                                       uint64_t seed, bool drop_last)
    : n_(n),
      world_size_(world_size),
      rank_(rank),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  EMBER_CHECK(world_size >= 1, "DistributedSampler: world_size must be at least 1, got ",
              world_size);
  EMBER_CHECK(rank >= 0 && rank < world_size, "DistributedSampler: rank ", rank, " is outside [0, ",
              world_size, ")");
  const size_t world = static_cast<size_t>(world_size);
  per_rank_ = drop_last ? n / world : (n + world - 1) / world;
}

std::vector<size_t> DistributedSampler::epoch_indices(int64_t epoch) const {
  check_epoch("DistributedSampler", epoch);
  std::vector<size_t> order(n_);
  std::iota(order.begin(), order.end(), size_t{0});
  if (shuffle_) order = seeded_permutation(n_, seed_, epoch);  // the same on every rank
  // Position p of the padded list is order[p mod n]: padding repeats the list from its start
  // (several times over when n < world_size), cutting keeps positions < total_size().
  std::vector<size_t> mine;
  mine.reserve(per_rank_);
  for (size_t p = static_cast<size_t>(rank_); p < total_size(); p += world_size_)
    mine.push_back(order[p % n_]);
  return mine;
}

FixedLengthSampler::FixedLengthSampler(size_t n, size_t length, uint64_t seed)
    : n_(n), length_(length), seed_(seed) {
  EMBER_CHECK(n > 0 || length == 0, "--train_data_length ", length,
              ": the shard has no examples to draw from");
}

std::vector<size_t> FixedLengthSampler::epoch_indices(int64_t epoch) const {
  check_epoch("FixedLengthSampler", epoch);
  // Two independent streams of the same (seed, epoch): the shard permutation and the order in
  // which the L items are fetched.
  std::vector<size_t> permutation(n_);
  std::iota(permutation.begin(), permutation.end(), size_t{0});
  SampleRandom for_permutation(seed_, static_cast<uint64_t>(epoch), 0);
  shuffle_in_place(permutation, for_permutation);
  std::vector<size_t> order(length_);
  std::iota(order.begin(), order.end(), size_t{0});
  SampleRandom for_order(seed_, static_cast<uint64_t>(epoch), 1);
  shuffle_in_place(order, for_order);
  for (size_t& item : order) item = permutation[item % n_];
  return order;
}

size_t FixedLengthSampler::steps(size_t batch_size) const {
  EMBER_CHECK(batch_size > 0, "FixedLengthSampler: batch size must be positive");
  return (length_ + batch_size - 1) / batch_size;
}

}  // namespace ember::data
