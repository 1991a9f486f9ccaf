// A data set computed on demand: example i's label and pixels are a pure function of
// (seed, i), so a synthetic data set of any size and shape costs no memory and no files, and
// reads the same on every thread, run and machine. For tests and loader benchmarks.
//
// Example i draws from the stream SampleRandom(seed, 0, i): its first word gives the label
// (uniform in [0, num_classes)), the following words the pixel bytes, four per word, in
// (y, x, c) order. The pixels are uniform noise: nothing in them tells the classes apart.
#pragma once

#include <cstdint>
#include <string>

#include "datasets/dataset.h"

namespace ember::data {

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(size_t n, int height, int width, int channels, int num_classes, uint64_t seed);

  size_t size() const override { return n_; }
  int num_classes() const override { return num_classes_; }
  int64_t label(size_t index) const override;
  void load_image(size_t index, Image& out) const override;
  std::string source(size_t index) const override;

  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }

 private:
  void check_index(size_t index) const;
  size_t n_;
  int height_, width_, channels_, num_classes_;
  uint64_t seed_;
};

}  // namespace ember::data
