// Samplers decide which examples an epoch visits, and in which order.
//
// A sampler maps an epoch number to a list of data-set indices; the same (sampler, epoch)
// always gives the same list, so runs are reproducible and resumable mid-training. The
// DataLoader cuts each list into batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "datasets/sample_random.h"

namespace ember::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The indices visited in epoch `epoch` (0-based), in order.
  virtual std::vector<size_t> epoch_indices(int64_t epoch) const = 0;
  // The length of every epoch's list.
  virtual size_t size() const = 0;
};

// ---- concrete samplers ---------------------------------------------------------------------
// Shuffled orders come from a SampleRandom keyed by (seed, epoch): a new permutation every epoch,
// the same one on every run, every thread count and every rank.

// Fisher–Yates: for i from n − 1 down to 1, swap element i with a uniform j in [0, i] (an
// unbiased integer draw, no modulo bias).
void shuffle_in_place(std::vector<size_t>& values, SampleRandom& random);
// 0, 1, ..., n − 1 shuffled by the stream SampleRandom(seed, epoch, 0).
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed, int64_t epoch);

// 0, 1, ..., n − 1 in order, every epoch.
class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(size_t n) : n_(n) {}
  std::vector<size_t> epoch_indices(int64_t epoch) const override;
  size_t size() const override { return n_; }

 private:
  size_t n_;
};

// Every example once per epoch, in a new random order each epoch.
class RandomSampler : public Sampler {
 public:
  RandomSampler(size_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<size_t> epoch_indices(int64_t epoch) const override;
  size_t size() const override { return n_; }

 private:
  size_t n_;
  uint64_t seed_;
};

// One rank's share of the data set, as PyTorch's DistributedSampler: every rank orders the whole
// data set the same way (shuffled by (seed, epoch), or in order), then
//   - drop_last = false: pads the list by repeating it from the start up to a multiple of
//     world_size (so some examples appear twice in an epoch);
//   - drop_last = true: cuts the tail to a multiple of world_size;
// and rank r takes positions r, r + world_size, r + 2·world_size, ... So the ranks' shards are
// disjoint (but for the padding), cover the data set (but for the dropped tail), and every rank
// gets exactly size() examples: the same number of steps, which collectives need.
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(size_t n, int world_size, int rank, bool shuffle = true, uint64_t seed = 0,
                     bool drop_last = false);
  std::vector<size_t> epoch_indices(int64_t epoch) const override;
  // ceil(n / world_size) without drop_last, floor(n / world_size) with it.
  size_t size() const override { return per_rank_; }
  // The padded (or cut) length of the whole list: size() · world_size.
  size_t total_size() const { return per_rank_ * static_cast<size_t>(world_size_); }

 private:
  size_t n_;
  int world_size_, rank_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  size_t per_rank_;
};

// Epochs of a fixed length L over a shard of n examples, as the peer-to-peer training's
// --train_data_length L (the node's shard is a Subset; this sampler returns positions in it).
//
// What the original program does: its data set reports length L and maps item k to
// shard[perm[k mod n]], where perm is a node-local permutation of the shard that is reshuffled
// after every L fetches; its DataLoader (shuffle=True, drop_last=False) fetches the items k of a
// random order of [0, L). So one epoch is exactly L fetches, ceil(L / batch) steps with a short
// last batch when batch does not divide L, and the permutation changes at every epoch boundary.
// With L <= n an epoch visits L distinct examples (a different random subset each epoch); with
// L > n every example appears floor(L / n) or ceil(L / n) times.
//
// ember: epoch e's list is shard position perm_e[order_e[j] mod n] for j = 0 .. L − 1, with
// perm_e a permutation of [0, n) and order_e one of [0, L), both drawn from (seed, epoch). It
// differs from the original only in its random numbers (keyed by epoch rather than a running
// generator, so resuming at any epoch gives the same lists) and in one side effect it does not
// copy: the original's after-epoch evaluation over the training view made another L fetches and
// so reshuffled once more; here evaluation reads the same epoch's list and changes nothing.
class FixedLengthSampler : public Sampler {
 public:
  FixedLengthSampler(size_t n, size_t length, uint64_t seed);
  std::vector<size_t> epoch_indices(int64_t epoch) const override;
  size_t size() const override { return length_; }
  // Steps per epoch for a batch size: ceil(L / batch).
  size_t steps(size_t batch_size) const;

 private:
  size_t n_, length_;
  uint64_t seed_;
};

}  // namespace ember::data
