#include "datasets/idx.h"

#include <cstdio>  // snprintf
#include <filesystem>
#include <memory>

#include "datasets/archive.h"
#include "engine/error.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

uint32_t big_endian_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

void put_big_endian_u32(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

// The header: the magic number and `rank` sizes, checked for length and magic.
std::vector<uint32_t> parse_header(const std::vector<uint8_t>& bytes, const std::string& name,
                                   uint32_t magic, const char* what) {
  const size_t rank = magic & 0xff;
  const size_t header_bytes = 4 + 4 * rank;
  EMBER_CHECK(bytes.size() >= 4, name, ": truncated: expected at least ", header_bytes,
              " bytes (an idx header), got ", bytes.size());
  const uint32_t found = big_endian_u32(bytes.data());
  if (found != magic) {
    char expected_hex[16], found_hex[16];
    std::snprintf(expected_hex, sizeof expected_hex, "0x%08x", magic);
    std::snprintf(found_hex, sizeof found_hex, "0x%08x", found);
    throw Error(str_cat(name, ": bad magic number ", found_hex, " (expected ", expected_hex,
                        ": idx ", what, ", unsigned bytes in ", rank, " dimension",
                        rank == 1 ? "" : "s", ")"));
  }
  EMBER_CHECK(bytes.size() >= header_bytes, name, ": truncated: expected at least ", header_bytes,
              " bytes (an idx header), got ", bytes.size());
  std::vector<uint32_t> sizes(rank);
  for (size_t i = 0; i < rank; ++i) sizes[i] = big_endian_u32(bytes.data() + 4 + 4 * i);
  return sizes;
}

void check_length(const std::vector<uint8_t>& bytes, const std::string& name, uint64_t expected,
                  const std::string& layout) {
  if (bytes.size() == expected) return;
  throw Error(str_cat(name, bytes.size() < expected ? ": truncated" : ": too long", ": expected ",
                      expected, " bytes (", layout, "), got ", bytes.size()));
}

}  // namespace

IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::vector<uint32_t> sizes = parse_header(bytes, name, kImagesMagic, "images");
  IdxImages images;
  images.count = sizes[0];
  EMBER_CHECK(sizes[1] > 0 && sizes[2] > 0 && sizes[1] <= 65535 && sizes[2] <= 65535, name,
              ": images of ", sizes[1], "×", sizes[2], " pixels (expected 1 to 65535 each way)");
  images.height = static_cast<int>(sizes[1]);
  images.width = static_cast<int>(sizes[2]);
  // count < 2^32 and each side < 2^16, so the byte count fits in 64 bits.
  const uint64_t payload = static_cast<uint64_t>(images.count) * images.height * images.width;
  check_length(bytes, name, 16 + payload,
               str_cat("a 16-byte header and ", images.count, " images of ", images.height, "×",
                       images.width));
  images.pixels.assign(bytes.begin() + 16, bytes.end());
  return images;
}

std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::vector<uint32_t> sizes = parse_header(bytes, name, kLabelsMagic, "labels");
  check_length(bytes, name, 8 + static_cast<uint64_t>(sizes[0]),
               str_cat("an 8-byte header and ", sizes[0], " labels"));
  return std::vector<uint8_t>(bytes.begin() + 8, bytes.end());
}

IdxImages read_idx_images(const std::string& path) {
  return parse_idx_images(read_file_maybe_gzipped(path), path);
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  return parse_idx_labels(read_file_maybe_gzipped(path), path);
}

void write_idx_images(const std::string& path, size_t count, int height, int width,
                      const std::vector<uint8_t>& pixels, bool gzipped) {
  EMBER_CHECK(height > 0 && width > 0 && height <= 65535 && width <= 65535, path, ": images of ",
              height, "×", width, " pixels cannot be written");
  EMBER_CHECK(count <= UINT32_MAX, path, ": ", count, " images are more than idx can count");
  EMBER_CHECK(pixels.size() == count * height * width, path, ": ", count, " images of ", height,
              "×", width, " need ", count * height * width, " bytes, got ", pixels.size());
  std::vector<uint8_t> bytes;
  bytes.reserve(16 + pixels.size());
  for (uint32_t value : {kImagesMagic, static_cast<uint32_t>(count), static_cast<uint32_t>(height),
                         static_cast<uint32_t>(width)})
    put_big_endian_u32(bytes, value);
  bytes.insert(bytes.end(), pixels.begin(), pixels.end());
  write_file_atomically(path, gzipped ? gzip(bytes) : bytes);
}

void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels, bool gzipped) {
  EMBER_CHECK(labels.size() <= UINT32_MAX, path, ": ", labels.size(),
              " labels are more than idx can count");
  std::vector<uint8_t> bytes;
  bytes.reserve(8 + labels.size());
  put_big_endian_u32(bytes, kLabelsMagic);
  put_big_endian_u32(bytes, static_cast<uint32_t>(labels.size()));
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  write_file_atomically(path, gzipped ? gzip(bytes) : bytes);
}

std::vector<std::string> mnist_class_names(MnistKind kind) {
  if (kind == MnistKind::FashionMnist) {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

namespace {

// The spellings one idx file goes by: "train-images-idx3-ubyte" as published (and gzipped),
// and "train-images.idx3-ubyte" as some mirrors rename it.
std::vector<std::string> spellings(const std::string& split, const std::string& what,
                                   const std::string& rank) {
  const std::string dashed = split + "-" + what + "-" + rank + "-ubyte";
  const std::string dotted = split + "-" + what + "." + rank + "-ubyte";
  return {dashed, dashed + ".gz", dotted, dotted + ".gz"};
}

std::string find_one(const fs::path& folder, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    std::error_code ec;
    if (fs::is_regular_file(folder / name, ec)) return (folder / name).string();
  }
  return "";
}

// The folders an MNIST-style data set may sit in, for a given folder: itself, torchvision's
// ROOT/MNIST/raw (ROOT/FashionMNIST/raw), and ROOT/raw (when given torchvision's ROOT/MNIST).
std::vector<fs::path> places_to_look(const std::string& folder, MnistKind kind) {
  const fs::path root(folder);
  const std::string torchvision = kind == MnistKind::FashionMnist ? "FashionMNIST" : "MNIST";
  return {root, root / torchvision / "raw", root / "raw"};
}

}  // namespace

bool has_mnist_files(const std::string& folder, MnistKind kind) {
  for (const fs::path& place : places_to_look(folder, kind)) {
    if (!find_one(place, spellings("train", "images", "idx3")).empty()) return true;
  }
  return false;
}

MnistFiles find_mnist_files(const std::string& folder, MnistKind kind) {
  const std::vector<fs::path> places = places_to_look(folder, kind);
  const auto train_images = spellings("train", "images", "idx3");
  const auto train_labels = spellings("train", "labels", "idx1");
  const auto test_images = spellings("t10k", "images", "idx3");
  const auto test_labels = spellings("t10k", "labels", "idx1");

  for (const fs::path& place : places) {
    MnistFiles files{find_one(place, train_images), find_one(place, train_labels),
                     find_one(place, test_images), find_one(place, test_labels)};
    if (files.train_images.empty()) continue;
    std::string missing;
    for (const auto* names : {&train_labels, &test_images, &test_labels}) {
      if (find_one(place, *names).empty()) missing += str_cat(" ", names->front(), "[.gz]");
    }
    EMBER_CHECK(missing.empty(), place.string(), ": has ",
                fs::path(files.train_images).filename().string(), " but not", missing);
    return files;
  }
  std::string looked_in;
  for (const fs::path& place : places)
    looked_in += str_cat(looked_in.empty() ? "" : ", ", place.string());
  throw Error(str_cat(
      folder, ": no ", kind == MnistKind::FashionMnist ? "Fashion-MNIST" : "MNIST",
      " idx files: looked for train-images-idx3-ubyte, train-labels-idx1-ubyte, "
      "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz) in ",
      looked_in,
      ". scripts/get-data.sh fetches Fashion-MNIST and 10,000 real MNIST digits into data/."));
}

namespace {

std::shared_ptr<const Dataset> load_split(const std::string& images_path,
                                          const std::string& labels_path, MnistKind kind) {
  IdxImages images = read_idx_images(images_path);
  const std::vector<uint8_t> labels = read_idx_labels(labels_path);
  EMBER_CHECK(images.count == labels.size(), images_path, " holds ", images.count, " images but ",
              labels_path, " holds ", labels.size(), " labels");
  std::vector<int64_t> wide(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    EMBER_CHECK(labels[i] <= 9, labels_path, ": label ", int(labels[i]), " at index ", i,
                " is outside 0..9");
    wide[i] = labels[i];
  }
  return std::make_shared<InMemoryImageDataset>(images.height, images.width, 1,
                                                std::move(images.pixels), std::move(wide), 10,
                                                mnist_class_names(kind), images_path);
}

}  // namespace

TrainTest load_mnist(const std::string& folder, MnistKind kind) {
  const MnistFiles files = find_mnist_files(folder, kind);
  TrainTest data;
  data.train = load_split(files.train_images, files.train_labels, kind);
  data.test = load_split(files.test_images, files.test_labels, kind);
  const auto& train = static_cast<const InMemoryImageDataset&>(*data.train);
  const auto& test = static_cast<const InMemoryImageDataset&>(*data.test);
  EMBER_CHECK(train.height() == test.height() && train.width() == test.width(), files.train_images,
              " holds ", train.height(), "×", train.width(), " images but ", files.test_images,
              " holds ", test.height(), "×", test.width());
  return data;
}

}  // namespace ember::data
