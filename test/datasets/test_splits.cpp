// Data splits: the peer-to-peer non-IID class split against the seed's published test vector,
// the dAD k-fold and site chunks, and the validation hold-out.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "datasets/sampler.h"
#include "datasets/splits.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {
// 50,000 labels, 5,000 per class, interleaved by a fixed permutation (the split's counts depend
// only on each class having 5,000 examples; their positions must come back in data-set order).
std::vector<int64_t> cifar_like_labels() {
  const std::vector<size_t> order = seeded_permutation(50000, 77, 0);
  std::vector<int64_t> labels(50000);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(order[i] % 10);
  return labels;
}
}  // namespace

TEST_CASE("the non-IID class split reproduces the peer-to-peer test vector") {
  const std::vector<int64_t> labels = cifar_like_labels();
  const NonIidSplit split = non_iid_class_split(labels, 3);
  REQUIRE(split.nodes.size() == 3);
  // The published table (3 nodes, --data_init_seed 11).
  const std::vector<std::vector<int64_t>> classes = {
      {7, 8, 2, 6, 4, 5, 1, 3}, {4, 5, 1, 3, 0, 9, 7, 8}, {0, 9, 7, 8, 2, 6, 4, 5}};
  const std::vector<size_t> totals = {16673, 16671, 16656};
  const std::vector<std::vector<size_t>> counts = {
      {0, 2523, 2675, 2509, 1624, 1634, 2484, 1700, 1524, 0},
      {2360, 2477, 0, 2491, 1806, 1714, 0, 1690, 1758, 2375},
      {2640, 0, 2325, 0, 1570, 1652, 2516, 1610, 1718, 2625}};
  for (int node = 0; node < 3; ++node) {
    INFO("node " << node);
    const NodeShard& shard = split.nodes[node];
    CHECK(shard.classes == classes[node]);
    CHECK(shard.indices.size() == totals[node]);
    CHECK(shard.class_counts == counts[node]);
    // The labels of its examples agree with its counts, classes come in class order.
    std::vector<size_t> seen(10, 0);
    for (size_t i = 0; i < shard.indices.size(); ++i) {
      ++seen[labels[shard.indices[i]]];
      if (i > 0) CHECK(labels[shard.indices[i - 1]] <= labels[shard.indices[i]]);
    }
    CHECK(seen == counts[node]);
  }
  // Each class's examples, in data-set order, are cut into consecutive chunks: holder after
  // holder in ascending node order, together covering the class exactly once.
  for (int64_t label = 0; label < 10; ++label) {
    std::vector<size_t> of_class;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == label) of_class.push_back(i);
    std::vector<size_t> concatenated;
    for (int node : split.class_holders[label]) {
      for (size_t i : split.nodes[node].indices)
        if (labels[i] == label) concatenated.push_back(i);
    }
    INFO("class " << label);
    CHECK(concatenated == of_class);
    CHECK(split.class_holders[label].size() ==
          2 + (label == 4 || label == 5 || label == 7 || label == 8));  // dealt to all three nodes
  }
  CHECK(split.shuffled_classes == std::vector<int64_t>{7, 8, 2, 6, 4, 5, 1, 3, 0, 9});
}

TEST_CASE("per-node training seeds are numpy's randint under seed 569") {
  CHECK(p2p_node_seeds(3) == std::vector<int64_t>{4782114, 10936607, 18294487});
  CHECK(p2p_node_seeds(1) == std::vector<int64_t>{4782114});
}

TEST_CASE("the non-IID split leaves unheld classes out and names bad arguments") {
  // One node is dealt 8 of the 10 classes and holds all of their examples.
  std::vector<int64_t> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i % 10);
  const NonIidSplit single = non_iid_class_split(labels, 1);
  CHECK(single.nodes[0].classes == std::vector<int64_t>{7, 8, 2, 6, 4, 5, 1, 3});
  CHECK(single.nodes[0].indices.size() == 80);
  CHECK(single.class_holders[0].empty());
  CHECK(single.nodes[0].class_counts[9] == 0);
  CHECK(single.nodes[0].class_counts[7] == 10);

  CHECK(contains(error_of([&] { non_iid_class_split(labels, 3, 11, 10); }),
                 "classes per node must lie in [1, 10), got 10"));
  CHECK(contains(error_of([&] { non_iid_class_split(labels, 0); }),
                 "the number of nodes must be at least 1, got 0"));
  CHECK(contains(error_of([&] {
                   non_iid_class_split({0, 1, 12}, 2, 11, 8, 4, 0.2, 10);
                 }),
                 "label 12 of example 2 is outside [0, 10)"));
}

TEST_CASE("k-fold folds have sklearn's sizes and sites take contiguous chunks") {
  // 103 examples in 5 folds: 21, 21, 21, 20, 20. Fold 1 is [21, 42).
  const size_t sizes[] = {21, 21, 21, 20, 20};
  size_t begin = 0;
  for (int k = 0; k < 5; ++k) {
    const FoldSplit split = kfold_site_split(103, -1, 5, k, 1, 0);
    REQUIRE(split.validation.size() == sizes[k]);
    CHECK(split.validation.front() == begin);
    CHECK(split.validation.back() == begin + sizes[k] - 1);
    CHECK(split.train.size() == 103 - sizes[k]);
    begin += sizes[k];
  }
  // Fold 1's 82 training examples over 3 sites, as np.array_split: 28, 27, 27
  // (printed by numpy: chunks (0..48, 28), (49..75, 27), (76..102, 27)).
  std::vector<size_t> all_training;
  const size_t chunk_sizes[] = {28, 27, 27};
  for (int site = 0; site < 3; ++site) {
    const FoldSplit split = kfold_site_split(103, -1, 5, 1, 3, site);
    CHECK(split.train.size() == chunk_sizes[site]);
    CHECK(split.validation.front() == 21);  // every site validates on the whole fold
    CHECK(split.validation.size() == 21);
    all_training.insert(all_training.end(), split.train.begin(), split.train.end());
  }
  CHECK(kfold_site_split(103, -1, 5, 1, 3, 0).train.back() == 48);
  CHECK(kfold_site_split(103, -1, 5, 1, 3, 1).train.front() == 49);
  std::vector<size_t> expected(21);
  std::iota(expected.begin(), expected.end(), size_t{0});
  for (size_t i = 42; i < 103; ++i) expected.push_back(i);
  CHECK(all_training == expected);  // disjoint, in order, everything but the fold

  // --N keeps the first N examples.
  const FoldSplit first50 = kfold_site_split(60000, 50, 10, 9, 2, 1);
  CHECK(first50.validation == std::vector<size_t>{45, 46, 47, 48, 49});
  CHECK(first50.train.size() == 22);
  CHECK(first50.train.back() == 44);
}

TEST_CASE("k-fold errors name the flag and the value") {
  CHECK(
      contains(error_of([] { kfold_site_split(100, -1, 5, 7, 2, 0); }), "--k 7 is outside [0, 5)"));
  CHECK(contains(error_of([] { kfold_site_split(100, -1, 5, -1, 2, 0); }),
                 "--k -1 is outside [0, 5)"));
  CHECK(contains(error_of([] { kfold_site_split(100, 200, 5, 0, 2, 0); }),
                 "--N 200 is larger than the data set (100 examples)"));
  CHECK(contains(error_of([] { kfold_site_split(100, 0, 5, 0, 2, 0); }),
                 "--N 0 must be -1 (the whole data set) or a positive count"));
  CHECK(contains(error_of([] { kfold_site_split(100, -1, 1, 0, 2, 0); }),
                 "--num-folds 1 must be at least 2"));
  CHECK(contains(error_of([] { kfold_site_split(100, 4, 5, 0, 2, 0); }),
                 "--num-folds 5 is more than the 4 examples kept"));
  CHECK(contains(error_of([] { kfold_site_split(100, -1, 5, 0, 4, 4); }),
                 "site (rank) 4 is outside [0, 4)"));
  CHECK(contains(error_of([] { kfold_site_split(6, -1, 3, 0, 5, 0); }),
                 "the 4 training examples of fold 0 cannot give each of 5 sites one"));
}

TEST_CASE("the validation hold-out is seeded disjoint and complete") {
  const HoldOut split = hold_out_split(1000, 100, 3);
  CHECK(split.validation.size() == 100);
  CHECK(split.train.size() == 900);
  CHECK(std::is_sorted(split.validation.begin(), split.validation.end()));
  CHECK(std::is_sorted(split.train.begin(), split.train.end()));
  std::vector<size_t> all = split.train;
  all.insert(all.end(), split.validation.begin(), split.validation.end());
  std::sort(all.begin(), all.end());
  std::vector<size_t> expected(1000);
  std::iota(expected.begin(), expected.end(), size_t{0});
  CHECK(all == expected);
  CHECK(hold_out_split(1000, 100, 3).validation == split.validation);
  CHECK(hold_out_split(1000, 100, 4).validation != split.validation);
  // Drawn from the whole range, not its tail.
  CHECK(split.validation.front() < 100);
  CHECK(split.validation.back() > 900);
  CHECK(hold_out_split(10, 0, 3).train.size() == 10);
  CHECK(contains(error_of([] { hold_out_split(50000, 50000, 1); }),
                 "--val-size 50000 leaves no training examples (the data set has 50000)"));
}
