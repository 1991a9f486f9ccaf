// Image folders: data sets stored as one image file per example (JPEG or PNG).
//
//   ImageFolder   ROOT/<class>/<file>: classes are the sorted sub-folder names (labels 0, 1,
//                 ...), files sorted by name within a class, as torchvision's ImageFolder does.
//                 Decodes on demand, on the DataLoader's worker threads.
//   load_imagenet ROOT/train and ROOT/val, two ImageFolders with the same classes.
//   DogsVsCats    Kaggle's flat folder of cat.<n>.jpg and dog.<n>.jpg (label 1 for dogs).
//   load_cifar10_image_folder
//                 ROOT/{train,test}/<ten CIFAR-10 classes>/, decoded into memory at once.
//
// Image files are those whose extension is in the options' list, compared without case
// (ImageNet's .JPEG); other files are ignored, and so are hidden ones (a name starting with
// '.': macOS's "._x.jpg", ".ipynb_checkpoints/"). Names sort byte by byte, like Python's
// sorted(), so that labels agree with torchvision's.
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ember::data {

struct ImageFolderOptions {
  int channels = 3;  // 3: RGB, 1: grey
  // Decode every image once when the data set is built (on several threads) and leave out
  // those that fail, instead of failing when one is loaded. skipped() names them.
  bool skip_bad_images = false;
  // File name endings that count as images, compared without case.
  std::vector<std::string> extensions = {".jpg", ".jpeg", ".png"};
  // Threads for skip_bad_images' check; 0: one per core.
  int threads = 0;
};

// What an image-file data set is made of: a root folder, file paths relative to it, and their
// labels (indices into class_names).
struct ImageFileList {
  std::string root;
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  std::vector<std::string> class_names;
};

// Image files under `root`, each with a label, decoded when loaded. ImageFolder and DogsVsCats
// differ only in how they find the files and their labels.
class ImageFileDataset : public Dataset {
 public:
  size_t size() const override { return files_.size(); }
  int num_classes() const override { return static_cast<int>(class_names_.size()); }
  int64_t label(size_t index) const override;
  void load_image(size_t index, Image& out) const override;
  // The file's path relative to root(): "cat/0003.jpg".
  std::string source(size_t index) const override;
  std::vector<std::string> class_names() const override { return class_names_; }

  const std::string& root() const { return root_; }
  // The file's full path.
  std::string path(size_t index) const;
  // Files left out by skip_bad_images, relative to root(), in file order.
  const std::vector<std::string>& skipped() const { return skipped_; }

 protected:
  // With options.skip_bad_images, decodes every file and keeps those that decode.
  ImageFileDataset(ImageFileList list, const ImageFolderOptions& options);

 private:
  void drop_bad_images(int threads);

  std::string root_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
  int channels_;
  std::vector<std::string> skipped_;
};

// ROOT/<class>/<file>, files found at any depth below their class folder. Errors: `root`
// missing or not a folder, no class folders, a class folder without image files (named).
class ImageFolder : public ImageFileDataset {
 public:
  explicit ImageFolder(const std::string& root, const ImageFolderOptions& options = {});
};

// ImageNet's layout: ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG (the validation images
// sorted into class folders). The two class lists must agree; an error names a class found
// in one split only.
TrainTest load_imagenet(const std::string& root, const ImageFolderOptions& options = {});

// Kaggle's dogs-vs-cats training images, a flat folder of cat.<n>.jpg and dog.<n>.jpg (or the
// Kaggle root holding it as train/). Labels: cat 0, dog 1 (class names "cat", "dog"). An image
// file named otherwise is an error naming it (Kaggle's test1/ has no labels); other files are
// ignored.
//
// Order: by the number n, a cat before the dog of the same number (cat.0, dog.0, cat.1, dog.1,
// ...), so that the first N files and every contiguous fold hold both classes; names whose n is
// not a number come after, sorted by name.
class DogsVsCats : public ImageFileDataset {
 public:
  explicit DogsVsCats(const std::string& folder, const ImageFolderOptions& options = {});
};

// CIFAR-10 as an image folder: ROOT/train/<class>/*.{jpg,png} and ROOT/test/<class>/..., with
// exactly the ten CIFAR-10 class folders (airplane ... truck, which sort into the standard label
// order). Decodes everything into memory as 32×32×3 images, classes in label order and files by
// name within a class, on `threads` threads (0: one per core); the result does not depend on
// the thread count. An image of another size is an error naming it.
TrainTest load_cifar10_image_folder(const std::string& root, int threads = 0);

}  // namespace ember::data
