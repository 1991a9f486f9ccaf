// Samplers: permutations that depend on (seed, epoch) alone, rank shards with PyTorch's padding
// rule, and the peer-to-peer training's fixed-length epochs.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "datasets/sampler.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {
std::vector<size_t> iota_list(size_t n) {
  std::vector<size_t> values(n);
  std::iota(values.begin(), values.end(), size_t{0});
  return values;
}
std::vector<size_t> sorted(std::vector<size_t> values) {
  std::sort(values.begin(), values.end());
  return values;
}
}  // namespace

TEST_CASE("the sequential sampler visits every example in order") {
  SequentialSampler sampler(5);
  CHECK(sampler.size() == 5);
  CHECK(sampler.epoch_indices(0) == iota_list(5));
  CHECK(sampler.epoch_indices(7) == iota_list(5));
  CHECK(SequentialSampler(0).epoch_indices(0).empty());
  CHECK(contains(error_of([&] { sampler.epoch_indices(-1); }),
                 "SequentialSampler: epoch -1 is negative"));
}

TEST_CASE("the random sampler draws a new permutation per epoch from seed and epoch") {
  RandomSampler sampler(1000, 42);
  const auto epoch0 = sampler.epoch_indices(0);
  CHECK(sorted(epoch0) == iota_list(1000));
  CHECK(sampler.epoch_indices(0) == epoch0);
  CHECK(RandomSampler(1000, 42).epoch_indices(0) == epoch0);
  CHECK(sampler.epoch_indices(1) != epoch0);
  CHECK(sorted(sampler.epoch_indices(1)) == iota_list(1000));
  CHECK(RandomSampler(1000, 43).epoch_indices(0) != epoch0);
  CHECK(epoch0 != iota_list(1000));

  // Unbiased: over many epochs each value lands in each position about equally often.
  RandomSampler small(5, 3);
  std::map<std::pair<size_t, size_t>, int> where;
  const int epochs = 10000;
  for (int e = 0; e < epochs; ++e) {
    const auto order = small.epoch_indices(e);
    for (size_t position = 0; position < order.size(); ++position)
      ++where[{order[position], position}];
  }
  REQUIRE(where.size() == 25);
  for (const auto& [value_position, count] : where) {
    INFO("value " << value_position.first << " at " << value_position.second);
    CHECK(count > 1800);  // expected 2000, standard deviation 40
    CHECK(count < 2200);
  }
}

TEST_CASE("distributed shards follow PyTorch's padding and cutting") {
  // Expected lists printed by torch.utils.data.DistributedSampler(range(n), num_replicas=w,
  // rank=r, shuffle=False, drop_last=d) under PyTorch 1.13.
  auto shards = [](size_t n, int world, bool drop_last) {
    std::vector<std::vector<size_t>> all;
    for (int rank = 0; rank < world; ++rank)
      all.push_back(DistributedSampler(n, world, rank, false, 0, drop_last).epoch_indices(0));
    return all;
  };
  using Lists = std::vector<std::vector<size_t>>;
  CHECK(shards(10, 4, false) == Lists{{0, 4, 8}, {1, 5, 9}, {2, 6, 0}, {3, 7, 1}});
  CHECK(shards(10, 4, true) == Lists{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
  CHECK(shards(2, 4, false) == Lists{{0}, {1}, {0}, {1}});
  CHECK(shards(2, 4, true) == Lists{{}, {}, {}, {}});
  CHECK(shards(3, 2, false) == Lists{{0, 2}, {1, 0}});
  CHECK(DistributedSampler(10, 4, 0).size() == 3);
  CHECK(DistributedSampler(10, 4, 0).total_size() == 12);
  CHECK(DistributedSampler(10, 4, 0, true, 0, true).size() == 2);
}

TEST_CASE("distributed shards are disjoint cover the data set and have equal step counts") {
  for (size_t n : {1, 7, 12, 50, 101}) {
    for (int world : {1, 2, 3, 8}) {
      for (bool drop_last : {false, true}) {
        INFO("n " << n << " world " << world << " drop_last " << drop_last);
        std::vector<std::vector<size_t>> lists;
        for (int rank = 0; rank < world; ++rank) {
          DistributedSampler sampler(n, world, rank, true, 9, drop_last);
          lists.push_back(sampler.epoch_indices(3));
          REQUIRE(lists.back().size() == sampler.size());  // every rank the same count
          CHECK(sampler.epoch_indices(3) == lists.back());
        }
        // Interleaving the ranks' lists rebuilds one shuffled order of the data set, padded
        // with its own first elements or cut to a multiple of the world size.
        std::vector<size_t> interleaved;
        for (size_t i = 0; i < lists[0].size(); ++i)
          for (int rank = 0; rank < world; ++rank) interleaved.push_back(lists[rank][i]);
        const size_t kept = drop_last ? n / world * world : n;
        std::vector<size_t> distinct(interleaved.begin(), interleaved.begin() + kept);
        CHECK(std::set<size_t>(distinct.begin(), distinct.end()).size() == kept);  // disjoint
        if (!drop_last) {
          CHECK(sorted(distinct) == iota_list(n));  // covers everything
          for (size_t p = n; p < interleaved.size(); ++p)
            CHECK(interleaved[p] == interleaved[p % n]);
        }
      }
    }
  }
  // Every rank shuffles the same way: a new epoch changes all shards, the same seed none.
  DistributedSampler rank0(100, 4, 0, true, 5), rank1(100, 4, 1, true, 5);
  CHECK(rank0.epoch_indices(0) != rank0.epoch_indices(1));
  CHECK(DistributedSampler(100, 4, 0, true, 5).epoch_indices(2) == rank0.epoch_indices(2));
  CHECK(DistributedSampler(100, 4, 0, true, 6).epoch_indices(2) != rank0.epoch_indices(2));
  std::set<size_t> both;
  for (size_t i : rank0.epoch_indices(4)) both.insert(i);
  for (size_t i : rank1.epoch_indices(4)) both.insert(i);
  CHECK(both.size() == 50);
}

TEST_CASE("distributed sampler rejects a rank outside the world") {
  CHECK(contains(error_of([] { DistributedSampler(10, 3, 3); }),
                 "DistributedSampler: rank 3 is outside [0, 3)"));
  CHECK(contains(error_of([] { DistributedSampler(10, 3, -1); }),
                 "DistributedSampler: rank -1 is outside [0, 3)"));
  CHECK(contains(error_of([] { DistributedSampler(10, 0, 0); }),
                 "DistributedSampler: world_size must be at least 1, got 0"));
}

TEST_CASE("fixed-length epochs draw L items of the shard and reshuffle every epoch") {
  // The seed's CIFAR-10 setting: a shard of 16,673 images, L = 10,000, batch 100.
  FixedLengthSampler sampler(16673, 10000, 4782114);
  CHECK(sampler.size() == 10000);
  CHECK(sampler.steps(100) == 100);
  CHECK(sampler.steps(128) == 79);  // ceil(10000 / 128): the last batch is short
  const auto epoch0 = sampler.epoch_indices(0);
  REQUIRE(epoch0.size() == 10000);
  CHECK(std::set<size_t>(epoch0.begin(), epoch0.end()).size() == 10000);  // L <= n: distinct
  CHECK(*std::max_element(epoch0.begin(), epoch0.end()) < 16673);
  CHECK(sampler.epoch_indices(0) == epoch0);
  const auto epoch1 = sampler.epoch_indices(1);
  CHECK(epoch1 != epoch0);
  // A different random subset each epoch: the two overlap in about L² / n = 5,998 items.
  std::set<size_t> first(epoch0.begin(), epoch0.end());
  size_t overlap = 0;
  for (size_t i : epoch1) overlap += first.count(i);
  CHECK(overlap > 5700);
  CHECK(overlap < 6300);
  // Over a few epochs every example of the shard is reached.
  std::set<size_t> reached;
  for (int e = 0; e < 20; ++e)
    for (size_t i : sampler.epoch_indices(e)) reached.insert(i);
  CHECK(reached.size() == 16673);
}

TEST_CASE("fixed-length epochs longer than the shard repeat every example evenly") {
  FixedLengthSampler sampler(7, 20, 1);
  for (int e = 0; e < 5; ++e) {
    const auto order = sampler.epoch_indices(e);
    REQUIRE(order.size() == 20);
    std::map<size_t, int> count;
    for (size_t i : order) ++count[i];
    CHECK(count.size() == 7);
    for (const auto& [item, times] : count) {
      CHECK(item < 7);
      CHECK(times >= 2);  // floor(20 / 7)
      CHECK(times <= 3);  // ceil(20 / 7)
    }
  }
  CHECK(FixedLengthSampler(7, 0, 1).epoch_indices(0).empty());
  CHECK(contains(error_of([] { FixedLengthSampler(0, 10, 1); }),
                 "--train_data_length 10: the shard has no examples to draw from"));
}
