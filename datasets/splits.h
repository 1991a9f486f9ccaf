// Ways of dividing a data set among nodes, folds and validation: each returns lists of indices
// into the data set (std::vector<size_t>); the caller wraps them in a Subset.
//
//   non_iid_class_split  the peer-to-peer programs' split: each node holds 8 of the 10 classes,
//                        with random shares of each class (numpy's legacy generator, seed 11)
//   kfold_site_split     the dAD programs' split: the first --N items, fold --k of --num-folds
//                        held out, the rest cut into one contiguous chunk per site
//   hold_out_split       --val-size N: a seeded random validation set out of a training set
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::data {

// ---- peer-to-peer: non-IID classes per node ------------------------------------------------

struct NodeShard {
  std::vector<int64_t> classes;      // the node's classes, in the order it was dealt them
  std::vector<size_t> indices;       // its examples: classes in class order, each in data-set order
  std::vector<size_t> class_counts;  // examples per class, for every class (0 where it has none)
};

struct NonIidSplit {
  std::vector<int64_t> shuffled_classes;           // the class list after the shuffle
  std::vector<std::vector<int>> class_holders;     // per class, its nodes in ascending order
  std::vector<std::vector<double>> class_weights;  // per class, its holders' normalized shares
  std::vector<NodeShard> nodes;                    // per node, by its index
};

// The seed's procedure, step by step (every random draw from one NumpyRandomState seeded with
// data_init_seed, in this order):
//   1. shuffle the class list [0, num_classes) with numpy's shuffle;
//   2. node n (its index among the alphabetically sorted node names) is dealt the
//      classes_per_node classes starting at position (n · node_shift) mod num_classes of the
//      shuffled list, wrapping around; a class's holders are the nodes dealt it, ascending;
//   3. for each class in class order: w = rand(#holders) · imbalance + (1 − imbalance),
//      normalized by np.sum (a class nobody holds draws nothing and is left out);
//   4. the class's examples, in data-set order, are cut into consecutive chunks, holder i
//      taking floor(w_i · count) of them and the last holder the remainder.
// num_classes = 0 takes the largest label + 1. Errors name the argument that is wrong.
NonIidSplit non_iid_class_split(const std::vector<int64_t>& labels, int num_nodes,
                                uint32_t data_init_seed = 11, int classes_per_node = 8,
                                int node_shift = 4, double imbalance = 0.2, int num_classes = 0);

// Per-node training seeds: RandomState(seed).randint(0, 25485227, size=num_nodes), node n taking
// entry n.
std::vector<int64_t> p2p_node_seeds(int num_nodes, uint32_t seed = 569);

// ---- dAD: k-fold without shuffling, one contiguous chunk per site --------------------------

struct FoldSplit {
  std::vector<size_t> train;       // this site's training examples
  std::vector<size_t> validation;  // the held-out fold, the same on every site
};

// `keep_first` is --N: the first N examples (−1: all of them). The kept examples are cut into
// num_folds consecutive folds as sklearn's KFold(shuffle=False): every fold has
// floor(kept / num_folds) examples and the first kept % num_folds folds one more. Fold k is the
// validation set; the others, in data-set order, are the training part, which is cut into
// num_sites consecutive chunks as np.array_split (the seed's helper): the first
// (training size % num_sites) sites take one example more than the others. Errors name the flag:
// "--k 7 is outside [0, 5)", "--N 70000 is larger than the data set (60000 examples)".
FoldSplit kfold_site_split(size_t dataset_size, int64_t keep_first, int num_folds, int k,
                           int num_sites, int site);

// ---- --val-size: a validation hold-out ------------------------------------------------------

struct HoldOut {
  std::vector<size_t> train;       // ascending
  std::vector<size_t> validation;  // ascending
};

// val_size examples drawn without replacement, uniformly, by a permutation of [0, n) from the
// stream SampleRandom(seed, 0, 1) (its first val_size entries); the rest train. Both lists are
// sorted, so the split depends on (n, val_size, seed) only and reads in data-set order. A
// val_size of 0 holds nothing out; one that leaves no training example is an error naming
// --val-size.
HoldOut hold_out_split(size_t n, size_t val_size, uint64_t seed);

}  // namespace ember::data
