#include "datasets/image_folder.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "datasets/archive.h"  // read_file_bytes
#include "datasets/image_decode.h"
#include "engine/error.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_hidden(const std::string& name) {
  return !name.empty() && name[0] == '.';
}

bool has_image_extension(const std::string& name, const std::vector<std::string>& extensions) {
  const std::string lower = lowercase(name);
  for (const std::string& extension : extensions) {
    const std::string ending = lowercase(extension);
    if (lower.size() > ending.size() &&
        lower.compare(lower.size() - ending.size(), ending.size(), ending) == 0) {
      return true;
    }
  }
  return false;
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i == 0 ? "" : separator) + items[i];
  return text;
}

void check_is_folder(const fs::path& folder, const std::string& what) {
  std::error_code error;
  const fs::file_status status = fs::status(folder, error);
  EMBER_CHECK(fs::exists(status), folder.string(), ": no such folder (", what, ")");
  EMBER_CHECK(fs::is_directory(status), folder.string(), ": not a folder (", what, ")");
}

// The visible entries directly inside `folder` that are folders (`folders` true) or files, by
// name, sorted.
std::vector<std::string> list_entries(const fs::path& folder, bool folders) {
  std::vector<std::string> names;
  std::error_code error;
  fs::directory_iterator it(folder, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code ignored;  // a dangling link is neither a folder nor a file
    if (!is_hidden(name) && (folders ? it->is_directory(ignored) : it->is_regular_file(ignored))) {
      names.push_back(name);
    }
  }
  EMBER_CHECK(!error, folder.string(), ": cannot list: ", error.message());
  std::sort(names.begin(), names.end());
  return names;
}

// The image files at any depth below `folder`, as paths relative to it ("a/b.jpg"), sorted.
// Hidden files and folders are passed over; links to folders are not followed (no cycles).
std::vector<std::string> list_image_files_below(const fs::path& folder,
                                                const std::vector<std::string>& extensions) {
  std::vector<std::string> files;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code ignored;
    if (is_hidden(name)) {
      if (it->is_directory(ignored)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ignored) && has_image_extension(name, extensions)) {
      files.push_back(it->path().lexically_relative(folder).generic_string());
    }
  }
  EMBER_CHECK(!error, folder.string(), ": cannot list: ", error.message());
  std::sort(files.begin(), files.end());
  return files;
}

// Calls body(index, scratch) for every index in [0, count), spread over `threads` threads
// (0: one per core), each with its own scratch Image. After a failure no new index is handed
// out; every smaller index has been handed out already and runs to its end, so the exception
// rethrown, that of the smallest failing index, does not depend on the thread count.
void for_each_index_in_parallel(size_t count, int threads,
                                const std::function<void(size_t, Image&)>& body) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const size_t workers = std::min(count, static_cast<size_t>(threads));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex failure_mutex;
  size_t failed_index = count;
  std::exception_ptr failure;

  auto work = [&] {
    Image scratch;
    while (!failed.load()) {
      const size_t index = next.fetch_add(1);
      if (index >= count) return;
      try {
        body(index, scratch);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (index < failed_index) {
          failed_index = index;
          failure = std::current_exception();
        }
        failed.store(true);
      }
    }
  };
  if (workers <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t i = 0; i < workers; ++i) pool.emplace_back(work);
    for (std::thread& thread : pool) thread.join();
  }
  if (failure) std::rethrow_exception(failure);
}

// ROOT/<class>/<files>: class folders sorted by name, labelled 0, 1, ...
ImageFileList list_image_folder(const std::string& root,
                                const std::vector<std::string>& extensions) {
  check_is_folder(root, "expected an image folder ROOT/<class>/<image files>");
  ImageFileList list;
  list.root = root;
  list.class_names = list_entries(root, /*folders=*/true);
  if (list.class_names.empty()) {
    const bool has_images = [&] {
      for (const std::string& name : list_entries(root, /*folders=*/false)) {
        if (has_image_extension(name, extensions)) return true;
      }
      return false;
    }();
    throw Error(str_cat(root, ": no class folders (an image folder holds one folder of images ",
                        "per class, ROOT/<class>/<image files>",
                        has_images ? "; this one holds image files directly" : "", ")"));
  }
  for (size_t label = 0; label < list.class_names.size(); ++label) {
    const std::string& class_name = list.class_names[label];
    const fs::path class_folder = fs::path(root) / class_name;
    const std::vector<std::string> files = list_image_files_below(class_folder, extensions);
    EMBER_CHECK(!files.empty(), class_folder.string(), ": class folder \"", class_name,
                "\" has no image files (", join(extensions), ")");
    for (const std::string& file : files) {
      list.files.push_back(class_name + "/" + file);
      list.labels.push_back(static_cast<int64_t>(label));
    }
  }
  return list;
}

// Kaggle's dogs-vs-cats: cat.<n>.jpg and dog.<n>.jpg in one folder.
ImageFileList list_dogs_vs_cats(const std::string& folder,
                                const std::vector<std::string>& extensions) {
  check_is_folder(folder, "expected Kaggle's dogs-vs-cats folder of cat.<n>.jpg and dog.<n>.jpg");
  auto image_files_in = [&](const fs::path& where) {
    std::vector<std::string> images;
    for (const std::string& name : list_entries(where, /*folders=*/false)) {
      if (has_image_extension(name, extensions)) images.push_back(name);
    }
    return images;
  };
  fs::path root = folder;
  std::vector<std::string> images = image_files_in(root);
  std::error_code ignored;
  if (images.empty() && fs::is_directory(root / "train", ignored)) {  // the Kaggle root
    root /= "train";
    images = image_files_in(root);
  }
  EMBER_CHECK(!images.empty(), root.string(), ": no image files (Kaggle's dogs-vs-cats names them ",
              "cat.<n>.jpg and dog.<n>.jpg)");

  struct Entry {
    bool has_number;
    unsigned long long number;
    int64_t label;
    std::string name;
  };
  std::vector<Entry> entries;
  for (const std::string& name : images) {
    const std::string lower = lowercase(name);
    int64_t label;
    if (lower.rfind("cat.", 0) == 0) {
      label = 0;
    } else if (lower.rfind("dog.", 0) == 0) {
      label = 1;
    } else {
      throw Error(str_cat((root / name).string(), ": not a dogs-vs-cats training image: the ",
                          "label comes from the name, which must start with cat. or dog. ",
                          "(Kaggle's test1/ images carry no labels)"));
    }
    // The number: what lies between "cat." and the extension's dot.
    const size_t extension_dot = name.rfind('.');
    const std::string middle = extension_dot > 4 ? name.substr(4, extension_dot - 4) : "";
    const bool has_number =
        !middle.empty() && middle.size() <= 18 &&
        std::all_of(middle.begin(), middle.end(), [](char c) { return c >= '0' && c <= '9'; });
    entries.push_back({has_number, has_number ? std::stoull(middle) : 0, label, name});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.has_number != b.has_number) return a.has_number;
    if (a.number != b.number) return a.number < b.number;
    if (a.label != b.label) return a.label < b.label;
    return a.name < b.name;
  });

  ImageFileList list;
  list.root = root.string();
  list.class_names = {"cat", "dog"};
  for (const Entry& entry : entries) {
    list.files.push_back(entry.name);
    list.labels.push_back(entry.label);
  }
  return list;
}

}  // namespace

ImageFileDataset::ImageFileDataset(ImageFileList list, const ImageFolderOptions& options)
    : root_(std::move(list.root)),
      files_(std::move(list.files)),
      labels_(std::move(list.labels)),
      class_names_(std::move(list.class_names)),
      channels_(options.channels) {
  EMBER_CHECK(channels_ == 1 || channels_ == 3, root_, ": images decode to 1 (grey) or 3 (RGB) ",
              "channels, not ", channels_);
  EMBER_CHECK(files_.size() == labels_.size(), root_, ": ", files_.size(), " files but ",
              labels_.size(), " labels");
  if (options.skip_bad_images) drop_bad_images(options.threads);
}

void ImageFileDataset::drop_bad_images(int threads) {
  // Decode each file once; a file that fails keeps its message (which names it, relative to
  // the root) for the report.
  std::vector<std::string> failures(files_.size());
  for_each_index_in_parallel(files_.size(), threads, [&](size_t index, Image& scratch) {
    try {
      decode_image(read_file_bytes(path(index)), channels_, scratch, files_[index]);
    } catch (const Error& e) {
      failures[index] = e.what();
      if (failures[index].empty()) failures[index] = files_[index];
    }
  });

  std::vector<std::string> reasons;
  size_t kept = 0;
  for (size_t i = 0; i < files_.size(); ++i) {
    if (failures[i].empty()) {
      files_[kept] = std::move(files_[i]);
      labels_[kept] = labels_[i];
      ++kept;
    } else {
      skipped_.push_back(files_[i]);
      if (reasons.size() < 3) reasons.push_back(failures[i]);
    }
  }
  files_.resize(kept);
  labels_.resize(kept);
  if (!skipped_.empty()) {
    std::fprintf(stderr, "ember: %s: skipped %zu of %zu images that cannot be decoded: %s%s\n",
                 root_.c_str(), skipped_.size(), kept + skipped_.size(),
                 join(reasons, "; ").c_str(), skipped_.size() > reasons.size() ? "; ..." : "");
  }
}

int64_t ImageFileDataset::label(size_t index) const {
  EMBER_CHECK(index < labels_.size(), root_, ": example ", index, " of ", labels_.size());
  return labels_[index];
}

std::string ImageFileDataset::source(size_t index) const {
  EMBER_CHECK(index < files_.size(), root_, ": example ", index, " of ", files_.size());
  return files_[index];
}

std::string ImageFileDataset::path(size_t index) const {
  return (fs::path(root_) / source(index)).string();
}

void ImageFileDataset::load_image(size_t index, Image& out) const {
  decode_image_file(path(index), channels_, out);
}

ImageFolder::ImageFolder(const std::string& root, const ImageFolderOptions& options)
    : ImageFileDataset(list_image_folder(root, options.extensions), options) {}

DogsVsCats::DogsVsCats(const std::string& folder, const ImageFolderOptions& options)
    : ImageFileDataset(list_dogs_vs_cats(folder, options.extensions), options) {}

TrainTest load_imagenet(const std::string& root, const ImageFolderOptions& options) {
  check_is_folder(root, "expected ImageNet's ROOT/train/<class>/ and ROOT/val/<class>/");
  const fs::path val = fs::path(root) / "val";
  // ImageNet's validation archive unpacks into one flat folder; ember needs it sorted into
  // class folders like train/.
  std::error_code ignored;
  if (fs::is_directory(val, ignored) && list_entries(val, /*folders=*/true).empty() &&
      !list_entries(val, /*folders=*/false).empty()) {
    throw Error(str_cat(val.string(), ": the validation images lie directly in val/; they must ",
                        "be sorted into one folder per class, val/<class>/, as in train/"));
  }
  auto train = std::make_shared<ImageFolder>((fs::path(root) / "train").string(), options);
  auto test = std::make_shared<ImageFolder>(val.string(), options);

  const std::vector<std::string> train_classes = train->class_names();
  const std::vector<std::string> val_classes = test->class_names();
  if (train_classes != val_classes) {
    std::vector<std::string> only_train, only_val;
    std::set_difference(train_classes.begin(), train_classes.end(), val_classes.begin(),
                        val_classes.end(), std::back_inserter(only_train));
    std::set_difference(val_classes.begin(), val_classes.end(), train_classes.begin(),
                        train_classes.end(), std::back_inserter(only_val));
    const bool in_train = !only_train.empty();
    throw Error(str_cat(root, ": train/ and val/ have different classes (", train_classes.size(),
                        " and ", val_classes.size(), "): class \"",
                        in_train ? only_train.front() : only_val.front(), "\" is only in ",
                        in_train ? "train/" : "val/", " (", only_train.size() + only_val.size(),
                        " classes differ)"));
  }
  return {train, test};
}

namespace {

const std::vector<std::string> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

std::shared_ptr<const Dataset> load_cifar10_split(const fs::path& folder, int threads) {
  check_is_folder(folder, "a CIFAR-10 image folder holds train/<class>/ and test/<class>/");
  const ImageFolderOptions options;
  const std::vector<std::string> classes = list_entries(folder, /*folders=*/true);
  if (classes != kCifar10Classes) {
    std::vector<std::string> missing, unexpected;
    std::set_difference(kCifar10Classes.begin(), kCifar10Classes.end(), classes.begin(),
                        classes.end(), std::back_inserter(missing));
    std::set_difference(classes.begin(), classes.end(), kCifar10Classes.begin(),
                        kCifar10Classes.end(), std::back_inserter(unexpected));
    throw Error(str_cat(folder.string(), ": expected the ten CIFAR-10 class folders (",
                        join(kCifar10Classes), ")",
                        missing.empty() ? "" : "; missing: ", join(missing),
                        unexpected.empty() ? "" : "; unexpected: ", join(unexpected)));
  }
  const ImageFileList list = list_image_folder(folder.string(), options.extensions);

  constexpr int kSide = 32, kChannels = 3;
  constexpr size_t kImageBytes = kSide * kSide * kChannels;
  std::vector<uint8_t> pixels(list.files.size() * kImageBytes);
  for_each_index_in_parallel(list.files.size(), threads, [&](size_t index, Image& scratch) {
    const std::string path = (folder / list.files[index]).string();
    decode_image_file(path, kChannels, scratch);
    EMBER_CHECK(scratch.height == kSide && scratch.width == kSide, path, ": a ", scratch.height,
                "×", scratch.width, " image; CIFAR-10 images are 32×32");
    std::memcpy(pixels.data() + index * kImageBytes, scratch.pixels.data(), kImageBytes);
  });
  return std::make_shared<InMemoryImageDataset>(kSide, kSide, kChannels, std::move(pixels),
                                                list.labels, 10, kCifar10Classes, folder.string());
}

}  // namespace

TrainTest load_cifar10_image_folder(const std::string& root, int threads) {
  check_is_folder(root, "a CIFAR-10 image folder holds train/<class>/ and test/<class>/");
  return {load_cifar10_split(fs::path(root) / "train", threads),
          load_cifar10_split(fs::path(root) / "test", threads)};
}

}  // namespace ember::data
