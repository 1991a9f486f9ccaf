// Image folders: data sets stored as one image file per example (JPEG or PNG).
#pragma once

#include <string>

#include "datasets/dataset.h"

namespace ember::data {

// CIFAR-10 as an image folder: ROOT/train/<class>/*.{jpg,png} and ROOT/test/<class>/..., with
// the ten CIFAR-10 class folders (airplane ... truck, which sort into the standard label
// order). Decodes everything into memory as 32×32×3 images.
TrainTest load_cifar10_image_folder(const std::string& root);

}  // namespace ember::data
