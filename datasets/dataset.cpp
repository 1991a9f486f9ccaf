#include "datasets/dataset.h"

#include <cstring>

#include "engine/error.h"

namespace ember::data {

std::vector<int64_t> Dataset::labels() const {
  std::vector<int64_t> all(size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = label(i);
  return all;
}

InMemoryImageDataset::InMemoryImageDataset(int height, int width, int channels,
                                           std::vector<uint8_t> pixels, std::vector<int64_t> labels,
                                           int num_classes, std::vector<std::string> class_names,
                                           std::string name)
    : height_(height),
      width_(width),
      channels_(channels),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      num_classes_(num_classes),
      class_names_(std::move(class_names)),
      name_(std::move(name)) {
  const std::string where = name_.empty() ? std::string("in-memory data set") : name_;
  EMBER_CHECK(height_ > 0 && width_ > 0 && (channels_ == 1 || channels_ == 3), where,
              ": images must be H×W×1 or H×W×3 with H, W > 0, got ", height_, "×", width_, "×",
              channels_);
  EMBER_CHECK(num_classes_ > 0, where, ": num_classes must be positive, got ", num_classes_);
  EMBER_CHECK(pixels_.size() == labels_.size() * image_bytes(), where, ": ", labels_.size(),
              " labels need ", labels_.size() * image_bytes(), " pixel bytes, got ",
              pixels_.size());
  EMBER_CHECK(class_names_.empty() || static_cast<int>(class_names_.size()) == num_classes_, where,
              ": ", class_names_.size(), " class names for ", num_classes_, " classes");
  for (size_t i = 0; i < labels_.size(); ++i) {
    EMBER_CHECK(labels_[i] >= 0 && labels_[i] < num_classes_, where, ": label ", labels_[i],
                " of example ", i, " is outside [0, ", num_classes_, ")");
  }
}

int64_t InMemoryImageDataset::label(size_t index) const {
  EMBER_CHECK(index < labels_.size(), name_, ": example ", index, " of ", labels_.size());
  return labels_[index];
}

const uint8_t* InMemoryImageDataset::image_data(size_t index) const {
  EMBER_CHECK(index < labels_.size(), name_, ": example ", index, " of ", labels_.size());
  return pixels_.data() + index * image_bytes();
}

void InMemoryImageDataset::load_image(size_t index, Image& out) const {
  const uint8_t* data = image_data(index);
  out.resize(height_, width_, channels_);
  std::memcpy(out.pixels.data(), data, image_bytes());
}

std::string InMemoryImageDataset::source(size_t index) const {
  return str_cat(name_.empty() ? "in-memory data set" : name_, ", example ", index);
}

Subset::Subset(std::shared_ptr<const Dataset> parent, std::vector<size_t> indices)
    : parent_(std::move(parent)), indices_(std::move(indices)) {
  EMBER_CHECK(parent_ != nullptr, "Subset: no parent data set");
  for (size_t i : indices_) {
    EMBER_CHECK(i < parent_->size(), "Subset: index ", i, " is outside the parent data set (",
                parent_->size(), " examples)");
  }
}

size_t Subset::parent_index(size_t index) const {
  EMBER_CHECK(index < indices_.size(), "Subset: example ", index, " of ", indices_.size());
  return indices_[index];
}

int64_t Subset::label(size_t index) const {
  return parent_->label(parent_index(index));
}
void Subset::load_image(size_t index, Image& out) const {
  parent_->load_image(parent_index(index), out);
}
std::string Subset::source(size_t index) const {
  return parent_->source(parent_index(index));
}

}  // namespace ember::data
