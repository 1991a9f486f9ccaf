// What every data set in ember is: a numbered list of (image, label) examples.
//
// Images are 8-bit pixels with interleaved channels, stored row by row as (height, width,
// channels): the layout image files decode to and the one transforms work on. The DataLoader
// turns them into float tensors (batch, channels, height, width) at the very end.
//
// Two kinds of data set sit behind this interface: those held in memory (CIFAR-10, MNIST:
// every image the same size, a few tens of megabytes) and those read from files as needed
// (ImageFolder: ImageNet, dogs-vs-cats), which decode on the DataLoader's worker threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ember::data {

// One decoded image. Its buffer is reused from example to example, so that loading allocates
// nothing in steady state.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;             // 1 (grey) or 3 (RGB)
  std::vector<uint8_t> pixels;  // height * width * channels bytes, (y, x, c) row-major

  void resize(int new_height, int new_width, int new_channels) {
    height = new_height;
    width = new_width;
    channels = new_channels;
    pixels.resize(static_cast<size_t>(height) * width * channels);
  }
  size_t bytes() const { return pixels.size(); }
  uint8_t* at(int y, int x) {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
  }
  const uint8_t* at(int y, int x) const {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
  }
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual size_t size() const = 0;
  virtual int num_classes() const = 0;
  // The label of example `index`, in [0, num_classes()); never decodes an image (samplers
  // and class splits read every label).
  virtual int64_t label(size_t index) const = 0;
  // Writes example `index`'s image into `out`, reusing its buffer. Safe to call from several
  // threads at once. A file that cannot be decoded is an ember::Error that names it.
  virtual void load_image(size_t index, Image& out) const = 0;
  // Where example `index` comes from, for messages: "train/cat/0003.jpg",
  // "data_batch_2.bin, record 17".
  virtual std::string source(size_t index) const = 0;
  // Class names in label order ("airplane", ...), or empty when the format has none.
  virtual std::vector<std::string> class_names() const { return {}; }

  // Every label, in example order.
  std::vector<int64_t> labels() const;
};

// Images held in memory, all of one shape: CIFAR-10 (32×32×3), MNIST (28×28×1), synthetic data.
class InMemoryImageDataset : public Dataset {
 public:
  // `pixels` holds labels.size() images of height × width × channels bytes each, one after the
  // other. Every label must lie in [0, num_classes) (checked, naming the first bad one and
  // `name`). `name` describes the origin for messages ("cifar-10-batches-bin/data_batch_1.bin").
  InMemoryImageDataset(int height, int width, int channels, std::vector<uint8_t> pixels,
                       std::vector<int64_t> labels, int num_classes,
                       std::vector<std::string> class_names = {}, std::string name = "");

  size_t size() const override { return labels_.size(); }
  int num_classes() const override { return num_classes_; }
  int64_t label(size_t index) const override;
  void load_image(size_t index, Image& out) const override;
  std::string source(size_t index) const override;
  std::vector<std::string> class_names() const override { return class_names_; }

  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }
  size_t image_bytes() const { return static_cast<size_t>(height_) * width_ * channels_; }
  // Example `index`'s pixels, image_bytes() of them (no copy).
  const uint8_t* image_data(size_t index) const;
  const std::vector<uint8_t>& pixels() const { return pixels_; }

 private:
  int height_, width_, channels_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int num_classes_;
  std::vector<std::string> class_names_;
  std::string name_;
};

// Some examples of another data set, in a given order: a validation split, a rank's shard, a
// fold. Indices are checked against the parent's size.
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> parent, std::vector<size_t> indices);

  size_t size() const override { return indices_.size(); }
  int num_classes() const override { return parent_->num_classes(); }
  int64_t label(size_t index) const override;
  void load_image(size_t index, Image& out) const override;
  std::string source(size_t index) const override;
  std::vector<std::string> class_names() const override { return parent_->class_names(); }

  const std::vector<size_t>& indices() const { return indices_; }
  const Dataset& parent() const { return *parent_; }

 private:
  size_t parent_index(size_t index) const;  // checked
  std::shared_ptr<const Dataset> parent_;
  std::vector<size_t> indices_;
};

// The two standard splits of a data set.
struct TrainTest {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
};

}  // namespace ember::data
