#include "datasets/splits.h"

#include <algorithm>
#include <numeric>

#include "datasets/numpy_random.h"
#include "datasets/sampler.h"
#include "engine/error.h"

namespace ember::data {

namespace {
// r · scale + offset with two roundings, as numpy evaluates it array-wise: the volatile keeps the
// compiler from fusing them into one fused multiply-add where the target has one.
double multiply_then_add(double r, double scale, double offset) {
  volatile double product = r * scale;
  return product + offset;
}
}  // namespace

NonIidSplit non_iid_class_split(const std::vector<int64_t>& labels, int num_nodes,
                                uint32_t data_init_seed, int classes_per_node, int node_shift,
                                double imbalance, int num_classes) {
  EMBER_CHECK(num_nodes >= 1, "non-IID split: the number of nodes must be at least 1, got ",
              num_nodes);
  if (num_classes == 0) {
    for (int64_t label : labels) num_classes = std::max<int64_t>(num_classes, label + 1);
  }
  EMBER_CHECK(num_classes > 0, "non-IID split: no classes (empty label list)");
  for (size_t i = 0; i < labels.size(); ++i)
    EMBER_CHECK(labels[i] >= 0 && labels[i] < num_classes, "non-IID split: label ", labels[i],
                " of example ", i, " is outside [0, ", num_classes, ")");
  EMBER_CHECK(classes_per_node >= 1 && classes_per_node < num_classes,
              "non-IID split: classes per node must lie in [1, ", num_classes, "), got ",
              classes_per_node);
  EMBER_CHECK(node_shift >= 1, "non-IID split: the node shift must be at least 1, got ",
              node_shift);
  EMBER_CHECK(imbalance >= 0 && imbalance <= 1,
              "non-IID split: the imbalance must lie in [0, 1], got ", imbalance);

  NonIidSplit split;
  NumpyRandomState random(data_init_seed);
  // 1. The shuffled class list.
  split.shuffled_classes.resize(num_classes);
  std::iota(split.shuffled_classes.begin(), split.shuffled_classes.end(), int64_t{0});
  random.shuffle(split.shuffled_classes);
  // 2. Deal each node its run of classes, wrapping around.
  split.nodes.resize(num_nodes);
  split.class_holders.resize(num_classes);
  for (int node = 0; node < num_nodes; ++node) {
    const int start = static_cast<int>((static_cast<int64_t>(node) * node_shift) % num_classes);
    for (int j = 0; j < classes_per_node; ++j) {
      const int64_t label = split.shuffled_classes[(start + j) % num_classes];
      split.nodes[node].classes.push_back(label);
      split.class_holders[label].push_back(node);
    }
  }
  // 3. Per class, in class order, its holders' shares.
  split.class_weights.resize(num_classes);
  for (int label = 0; label < num_classes; ++label) {
    std::vector<double> weights = random.rand(split.class_holders[label].size());
    for (double& w : weights) w = multiply_then_add(w, imbalance, 1.0 - imbalance);
    const double total = numpy_sum(weights);
    for (double& w : weights) w /= total;
    split.class_weights[label] = weights;
  }
  // 4. Cut each class's examples, in data-set order, into consecutive chunks.
  std::vector<std::vector<size_t>> by_class(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  for (auto& node : split.nodes) node.class_counts.assign(num_classes, 0);
  for (int label = 0; label < num_classes; ++label) {
    const auto& holders = split.class_holders[label];
    const auto& examples = by_class[label];
    size_t begin = 0;
    for (size_t h = 0; h < holders.size(); ++h) {
      // int(w · count): truncation, as numpy's astype(int) of a positive product.
      const size_t end = h + 1 == holders.size()
                             ? examples.size()
                             : begin + static_cast<size_t>(split.class_weights[label][h] *
                                                           static_cast<double>(examples.size()));
      NodeShard& node = split.nodes[holders[h]];
      node.indices.insert(node.indices.end(), examples.begin() + begin, examples.begin() + end);
      node.class_counts[label] = end - begin;
      begin = end;
    }
  }
  return split;
}

std::vector<int64_t> p2p_node_seeds(int num_nodes, uint32_t seed) {
  EMBER_CHECK(num_nodes >= 1, "p2p node seeds: the number of nodes must be at least 1, got ",
              num_nodes);
  return NumpyRandomState(seed).randint(0, 25485227, static_cast<size_t>(num_nodes));
}

FoldSplit kfold_site_split(size_t dataset_size, int64_t keep_first, int num_folds, int k,
                           int num_sites, int site) {
  EMBER_CHECK(keep_first == -1 || keep_first >= 1, "--N ", keep_first,
              " must be -1 (the whole data set) or a positive count");
  EMBER_CHECK(keep_first <= static_cast<int64_t>(dataset_size), "--N ", keep_first,
              " is larger than the data set (", dataset_size, " examples)");
  const size_t kept = keep_first == -1 ? dataset_size : static_cast<size_t>(keep_first);
  EMBER_CHECK(num_folds >= 2, "--num-folds ", num_folds, " must be at least 2");
  EMBER_CHECK(static_cast<size_t>(num_folds) <= kept, "--num-folds ", num_folds,
              " is more than the ", kept, " examples kept");
  EMBER_CHECK(k >= 0 && k < num_folds, "--k ", k, " is outside [0, ", num_folds, ")");
  EMBER_CHECK(num_sites >= 1, "the number of sites must be at least 1, got ", num_sites);
  EMBER_CHECK(site >= 0 && site < num_sites, "site (rank) ", site, " is outside [0, ", num_sites,
              ")");

  // Folds: the first kept % num_folds of them one example longer.
  const size_t folds = static_cast<size_t>(num_folds);
  const size_t fold = static_cast<size_t>(k);
  const size_t base = kept / folds, longer = kept % folds;
  const size_t fold_begin = fold * base + std::min(fold, longer);
  const size_t fold_end = fold_begin + base + (fold < longer ? 1 : 0);

  FoldSplit split;
  split.validation.resize(fold_end - fold_begin);
  std::iota(split.validation.begin(), split.validation.end(), fold_begin);

  // The training part is [0, fold_begin) then [fold_end, kept); site s takes positions
  // [chunk_begin, chunk_end) of it.
  const size_t training = kept - (fold_end - fold_begin);
  const size_t sites = static_cast<size_t>(num_sites), me = static_cast<size_t>(site);
  EMBER_CHECK(training >= sites, "the ", training, " training examples of fold ", k,
              " cannot give each of ", num_sites, " sites one");
  const size_t chunk = training / sites, chunk_longer = training % sites;
  const size_t chunk_begin = me * chunk + std::min(me, chunk_longer);
  const size_t chunk_end = chunk_begin + chunk + (me < chunk_longer ? 1 : 0);
  for (size_t position = chunk_begin; position < chunk_end; ++position)
    split.train.push_back(position < fold_begin ? position : position + (fold_end - fold_begin));
  return split;
}

HoldOut hold_out_split(size_t n, size_t val_size, uint64_t seed) {
  EMBER_CHECK(val_size < n || (n == 0 && val_size == 0), "--val-size ", val_size,
              " leaves no training examples (the data set has ", n, ")");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  SampleRandom random(seed, 0, 1);
  shuffle_in_place(order, random);
  HoldOut split;
  split.validation.assign(order.begin(), order.begin() + val_size);
  split.train.assign(order.begin() + val_size, order.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

}  // namespace ember::data
