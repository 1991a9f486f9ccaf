// CIFAR-10 in all its forms, written small (2 records a batch) and read back exactly: the binary
// and python batches, torchvision's root, the downloaded archives (gzipped or not), the image
// folder's detection, the binary writer; and the errors of short, damaged or unknown data.
#include <doctest/doctest.h>

#include <algorithm>  // sort
#include <filesystem>

#include "datasets/archive.h"
#include "datasets/cifar10.h"
#include "format_fixtures.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;
using ember::test::TemporaryDirectory;
using ember::test::write_bytes;
namespace fs = std::filesystem;

namespace {

constexpr size_t kRecordsPerBatch = 2;
constexpr size_t kTestId = 1000;  // record ids of the test batch start here

// The source value of channel c at (y, x) in record `id`: channels, rows and columns all change
// it differently, so a swap of any two shows.
uint8_t source_value(size_t id, int c, int y, int x) {
  return static_cast<uint8_t>(id * 53 + c * 101 + y * 7 + x * 3);
}

int source_label(size_t id) {
  return static_cast<int>((id * 3 + 1) % 10);
}

// Record `id`'s image as CIFAR stores it: 1024 red bytes, 1024 green, 1024 blue, row by row.
std::vector<uint8_t> planes(size_t id) {
  std::vector<uint8_t> bytes;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) bytes.push_back(source_value(id, c, y, x));
  return bytes;
}

// Records first_id .. first_id + count - 1 in the binary format: label byte, then the planes.
std::vector<uint8_t> bin_batch(size_t first_id, size_t count) {
  std::vector<uint8_t> bytes;
  for (size_t id = first_id; id < first_id + count; ++id) {
    bytes.push_back(static_cast<uint8_t>(source_label(id)));
    const std::vector<uint8_t> image = planes(id);
    bytes.insert(bytes.end(), image.begin(), image.end());
  }
  return bytes;
}

std::vector<uint8_t> py_batch(size_t first_id, size_t count) {
  std::vector<int64_t> labels;
  std::vector<uint8_t> data;
  std::vector<std::string> names;
  for (size_t id = first_id; id < first_id + count; ++id) {
    labels.push_back(source_label(id));
    const std::vector<uint8_t> image = planes(id);
    data.insert(data.end(), image.begin(), image.end());
    names.push_back("image_" + std::to_string(id) + ".png");
  }
  return ember::test::cifar_py_batch_pickle("a batch", labels, data, static_cast<int64_t>(count),
                                            3072, names);
}

// The six batch files of one layout, by name, `records` each.
std::vector<std::pair<std::string, std::vector<uint8_t>>> batch_files(bool binary, size_t records) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  for (int b = 0; b < 6; ++b) {
    const std::string stem = b < 5 ? "data_batch_" + std::to_string(b + 1) : "test_batch";
    const size_t first = b < 5 ? b * records : kTestId;
    files.emplace_back(binary ? stem + ".bin" : stem,
                       binary ? bin_batch(first, records) : py_batch(first, records));
  }
  return files;
}

void write_layout(const fs::path& folder, bool binary, size_t records = kRecordsPerBatch) {
  fs::create_directories(folder);
  for (const auto& [name, bytes] : batch_files(binary, records))
    write_bytes((folder / name).string(), bytes);
}

// A tar of one layout under its usual folder name (as in the downloaded archives).
std::vector<uint8_t> layout_tar(bool binary, int batches = 6) {
  const std::string folder = binary ? "cifar-10-batches-bin" : "cifar-10-batches-py";
  std::vector<ember::test::TarEntry> entries = {{folder, "", '5'}};
  const auto files = batch_files(binary, kRecordsPerBatch);
  for (int b = 0; b < batches; ++b) {
    entries.push_back({folder + "/" + files[b].first,
                       std::string(files[b].second.begin(), files[b].second.end())});
  }
  entries.push_back({folder + "/readme.html", "<html></html>"});
  return ember::test::tar_bytes(entries);
}

// Every example of one set against the source values, converted to (y, x, c).
void check_set(const Dataset& set, size_t first_id, size_t count) {
  REQUIRE(set.size() == count);
  Image image;
  for (size_t i = 0; i < count; ++i) {
    const size_t id = first_id + i;
    CHECK(set.label(i) == source_label(id));
    set.load_image(i, image);
    REQUIRE(image.height == 32);
    REQUIRE(image.width == 32);
    REQUIRE(image.channels == 3);
    size_t wrong = 0;
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        for (int c = 0; c < 3; ++c) wrong += image.at(y, x)[c] != source_value(id, c, y, x);
    INFO("example " << i);
    CHECK(wrong == 0);
  }
}

void check_cifar(const TrainTest& data) {
  check_set(*data.train, 0, 5 * kRecordsPerBatch);
  check_set(*data.test, kTestId, kRecordsPerBatch);
  CHECK(data.train->num_classes() == 10);
  CHECK(data.test->class_names() == cifar10_class_names());
  CHECK(cifar10_class_names() == std::vector<std::string>{"airplane", "automobile", "bird", "cat",
                                                          "deer", "dog", "frog", "horse", "ship",
                                                          "truck"});
}

}  // namespace

TEST_CASE("a binary batch reads its records with planes turned into interleaved pixels") {
  const Cifar10Records records = parse_cifar10_bin(bin_batch(7, 3), "small.bin");
  CHECK(records.labels == std::vector<int64_t>{source_label(7), source_label(8), source_label(9)});
  REQUIRE(records.pixels.size() == 3 * 3072);
  // Record 1 (id 8), pixel (y 5, x 30), blue: at ((5 * 32 + 30) * 3 + 2) in the interleaved copy
  CHECK(records.pixels[3072 + (5 * 32 + 30) * 3 + 2] == source_value(8, 2, 5, 30));
  CHECK(records.pixels[0] == source_value(7, 0, 0, 0));
  CHECK(records.pixels[1] == source_value(7, 1, 0, 0));
  CHECK(parse_cifar10_bin({}, "empty.bin").labels.empty());
}

TEST_CASE("a partial binary record or a label above 9 names the file and the counts") {
  std::vector<uint8_t> bytes = bin_batch(0, 2);
  bytes.resize(bytes.size() - 73);
  CHECK(error_of([&] { parse_cifar10_bin(bytes, "data_batch_3.bin"); }) ==
        "data_batch_3.bin: truncated: expected 6146 bytes (2 records of 3073 bytes), got 6073");
  bytes = bin_batch(0, 3);
  bytes[3073] = 10;  // record 1's label
  CHECK(error_of([&] { parse_cifar10_bin(bytes, "x.bin"); }) ==
        "x.bin: record 1 has label 10, outside 0..9");
  TemporaryDirectory dir;
  CHECK(error_of([&] { read_cifar10_bin_file(dir.file("none.bin")); }) ==
        dir.file("none.bin") + ": no such file");
}

TEST_CASE("a python batch reads its records with planes turned into interleaved pixels") {
  const Cifar10Records records = read_cifar10_py_batch(py_batch(40, 3), "data_batch_1");
  CHECK(records.labels ==
        std::vector<int64_t>{source_label(40), source_label(41), source_label(42)});
  CHECK(records.pixels[2 * 3072 + (31 * 32 + 1) * 3 + 1] == source_value(42, 1, 31, 1));
  CHECK(records.pixels == parse_cifar10_bin(bin_batch(40, 3), "same").pixels);
}

TEST_CASE("a python batch with bad labels or data is refused with the reason") {
  std::vector<uint8_t> data(2 * 3072, 0);
  const auto batch = [&](std::vector<int64_t> labels, int64_t rows, int64_t columns) {
    return ember::test::cifar_py_batch_pickle("b", labels, data, rows, columns, {"a", "b"});
  };
  CHECK(error_of([&] {
          read_cifar10_py_batch(batch({1, 12}, 2, 3072), "test_batch");
        }) == "test_batch: record 1 has label 12, outside 0..9");
  CHECK(error_of([&] {
          read_cifar10_py_batch(batch({1, 2, 3}, 2, 3072), "test_batch");
        }) == "test_batch: 2 images but 3 labels");
  CHECK(error_of([&] {
          read_cifar10_py_batch(batch({1, 2}, 4, 1536), "b1");
        }) == "b1: 'data' should be a numpy array u1 (N, 3072), found a numpy array u1 (4, 1536)");
  // A CIFAR-100 batch: 'fine_labels' instead of 'labels'.
  std::vector<uint8_t> hundred = batch({1, 2}, 2, 3072);
  const std::string text(hundred.begin(), hundred.end());
  const size_t at = text.find("\x06labels");
  REQUIRE(at != std::string::npos);
  hundred[at + 1] = 'L';
  CHECK(contains(error_of([&] { read_cifar10_py_batch(hundred, "train"); }),
                 "train: a CIFAR-10 batch has 'data' and 'labels' entries, this one has data, "
                 "Labels, batch_label, filenames"));
  CHECK(contains(error_of([] {
                   read_cifar10_py_batch({'K', 1, '.'}, "int.pickle");
                 }),
                 "int.pickle: a CIFAR-10 python batch is a dict, found a int"));
}

TEST_CASE("load_cifar10 reads a folder of binary batches") {
  TemporaryDirectory dir;
  write_layout(dir.path, true);
  const Cifar10Location location = find_cifar10(dir.path.string());
  CHECK(location.format == Cifar10Format::Binary);
  CHECK(location.path == dir.path.string());
  const TrainTest data = load_cifar10(dir.path.string(), kRecordsPerBatch);
  check_cifar(data);
  CHECK(contains(data.train->source(9), "data_batch_1.bin .. data_batch_5.bin, example 9"));
  CHECK(contains(data.test->source(1), "test_batch.bin, example 1"));
}

TEST_CASE("load_cifar10 reads a folder of python batches") {
  TemporaryDirectory dir;
  write_layout(dir.path, false);
  CHECK(find_cifar10(dir.path.string()).format == Cifar10Format::Python);
  check_cifar(load_cifar10(dir.path.string(), kRecordsPerBatch));
}

TEST_CASE("load_cifar10 finds the batches inside torchvision's root folder") {
  for (bool binary : {true, false}) {
    TemporaryDirectory dir;
    const fs::path batches = dir.path / (binary ? "cifar-10-batches-bin" : "cifar-10-batches-py");
    write_layout(batches, binary);
    const Cifar10Location location = find_cifar10(dir.path.string());
    CHECK(location.format == (binary ? Cifar10Format::Binary : Cifar10Format::Python));
    CHECK(location.path == batches.string());
    check_cifar(load_cifar10(dir.path.string(), kRecordsPerBatch));
  }
}

TEST_CASE("load_cifar10 reads the downloaded archives without unpacking them") {
  for (bool binary : {true, false}) {
    TemporaryDirectory dir;
    const std::string name = binary ? "cifar-10-binary.tar.gz" : "cifar-10-python.tar.gz";
    write_bytes(dir.file(name), gzip(layout_tar(binary), 1));
    const Cifar10Format format =
        binary ? Cifar10Format::BinaryArchive : Cifar10Format::PythonArchive;
    // The archive itself, and the folder it was downloaded into.
    for (const std::string& path : {dir.file(name), dir.path.string()}) {
      const Cifar10Location location = find_cifar10(path);
      CHECK(location.format == format);
      CHECK(location.path == dir.file(name));
      check_cifar(load_cifar10(path, kRecordsPerBatch));
    }
    // Under the other archive's name: what it holds decides.
    const std::string other = binary ? "cifar-10-python.tar.gz" : "cifar-10-binary.tar.gz";
    write_bytes(dir.file(other), gzip(layout_tar(binary), 1));
    check_cifar(load_cifar10(dir.file(other), kRecordsPerBatch));
    // Not gzipped, under another name: recognised by content.
    write_bytes(dir.file("my-copy.tar"), layout_tar(binary));
    CHECK(find_cifar10(dir.file("my-copy.tar")).format == format);
    check_cifar(load_cifar10(dir.file("my-copy.tar"), kRecordsPerBatch));
  }
}

TEST_CASE("an incomplete or damaged archive names the archive and the member") {
  TemporaryDirectory dir;
  write_bytes(dir.file("four.tar"), layout_tar(true, 4));
  CHECK(error_of([&] { load_cifar10(dir.file("four.tar"), kRecordsPerBatch); }) ==
        dir.file("four.tar") +
            ": no member cifar-10-batches-bin/data_batch_5.bin (the archive is incomplete)");
  // A single batch is not an archive: load_cifar10 wants the folder holding it.
  write_bytes(dir.file("data_batch_1.bin"), bin_batch(0, 2));
  CHECK(error_of([&] { load_cifar10(dir.file("data_batch_1.bin")); }) ==
        dir.file("data_batch_1.bin") + ": not a tar archive (it does not start with a tar header)");
  write_bytes(dir.file("other.tar"), ember::test::tar_bytes({{"notes.txt", "no batches here"}}));
  CHECK(contains(error_of([&] { load_cifar10(dir.file("other.tar")); }),
                 dir.file("other.tar") + ": this archive holds no data_batch_1.bin"));
  // The archive made with 2 records a batch, read as one of 10,000: the real files' size.
  write_bytes(dir.file("small.tar"), layout_tar(true));
  CHECK(error_of([&] { load_cifar10(dir.file("small.tar")); }) ==
        dir.file("small.tar") +
            ": cifar-10-batches-bin/data_batch_1.bin: truncated: expected 30730000 bytes (10000 "
            "records of 3073 bytes), got 6146");
  std::vector<uint8_t> cut = gzip(layout_tar(false));
  cut.resize(cut.size() / 2);
  write_bytes(dir.file("cut.tar.gz"), cut);
  CHECK(contains(error_of([&] { load_cifar10(dir.file("cut.tar.gz")); }),
                 dir.file("cut.tar.gz") + ": truncated gzip data"));
}

TEST_CASE("load_cifar10 wants every batch whole and of the expected size") {
  TemporaryDirectory dir;
  write_layout(dir.path / "bin", true);
  CHECK(error_of([&] { load_cifar10((dir.path / "bin").string(), 3); }) ==
        (dir.path / "bin" / "data_batch_1.bin").string() +
            ": truncated: expected 9219 bytes (3 records of 3073 bytes), got 6146");
  write_bytes((dir.path / "bin" / "data_batch_4.bin").string(), bin_batch(0, 3));
  CHECK(error_of([&] { load_cifar10((dir.path / "bin").string(), 2); }) ==
        (dir.path / "bin" / "data_batch_4.bin").string() +
            ": too long: expected 6146 bytes (2 records of 3073 bytes), got 9219");
  write_bytes((dir.path / "bin" / "data_batch_4.bin").string(), bin_batch(6, 2));
  fs::remove(dir.path / "bin" / "test_batch.bin");
  CHECK(error_of([&] { load_cifar10((dir.path / "bin").string(), 2); }) ==
        (dir.path / "bin" / "test_batch.bin").string() + ": no such file");

  write_layout(dir.path / "py", false);
  CHECK(error_of([&] { load_cifar10((dir.path / "py").string(), 3); }) ==
        (dir.path / "py" / "data_batch_1").string() + ": holds 2 images, expected 3");
  std::vector<uint8_t> bad = bin_batch(0, 2);
  bad[3073] = 200;
  write_bytes((dir.path / "bin" / "data_batch_4.bin").string(), bad);
  write_bytes((dir.path / "bin" / "test_batch.bin").string(), bin_batch(kTestId, 2));
  CHECK(error_of([&] { load_cifar10((dir.path / "bin").string(), 2); }) ==
        (dir.path / "bin" / "data_batch_4.bin").string() +
            ": record 1 has label 200, outside 0..9");
}

TEST_CASE("an image folder is recognised by its train and test folders") {
  TemporaryDirectory dir;
  fs::create_directories(dir.path / "train" / "cat");
  fs::create_directories(dir.path / "test" / "cat");
  const Cifar10Location location = find_cifar10(dir.path.string());
  CHECK(location.format == Cifar10Format::ImageFolder);
  CHECK(location.path == dir.path.string());
}

TEST_CASE("an unknown folder is an error listing every layout looked for") {
  TemporaryDirectory dir;
  write_bytes(dir.file("something.txt"), {1, 2, 3});
  const std::string message = error_of([&] { load_cifar10(dir.path.string()); });
  for (const std::string& part :
       {dir.path.string() + ": no CIFAR-10 here",
        (dir.path / "data_batch_1.bin").string() + " .. data_batch_5.bin and test_batch.bin",
        (dir.path / "data_batch_1").string() + " .. data_batch_5 and test_batch",
        (dir.path / "cifar-10-batches-bin").string(), (dir.path / "cifar-10-batches-py").string(),
        (dir.path / "cifar-10-binary.tar.gz").string(),
        (dir.path / "cifar-10-python.tar.gz").string(), (dir.path / "train").string() + "/<class>/",
        std::string("https://www.cs.toronto.edu/~kriz/cifar.html"),
        std::string("bin/ember_data cifar-from-folder")}) {
    INFO(part);
    CHECK(contains(message, part));
  }
  CHECK(contains(error_of([&] { find_cifar10(dir.file("absent")); }),
                 dir.file("absent") + ": no such file or folder"));
}

TEST_CASE("write_cifar10_bin writes the binary batches byte for byte") {
  TemporaryDirectory dir;
  write_layout(dir.path / "py", false);
  const TrainTest data = load_cifar10((dir.path / "py").string(), kRecordsPerBatch);
  write_cifar10_bin((dir.path / "out").string(), data, kRecordsPerBatch);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path / "out"))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{
                     "batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                     "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"});
  // The same bytes as the binary batches made from the source values directly.
  for (const auto& [name, bytes] : batch_files(true, kRecordsPerBatch)) {
    INFO(name);
    CHECK(read_file_bytes((dir.path / "out" / name).string()) == bytes);
  }
  CHECK(ember::test::read_file((dir.path / "out" / "batches.meta.txt").string()) ==
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  check_cifar(load_cifar10((dir.path / "out").string(), kRecordsPerBatch));

  CHECK(error_of([&] { write_cifar10_bin((dir.path / "x").string(), data); }) ==
        (dir.path / "x").string() +
            ": the binary version holds 5 training batches of 10000 images (50000), the "
            "training set has 10");
  TrainTest swapped{data.test, data.train};
  CHECK(contains(error_of([&] { write_cifar10_bin((dir.path / "x").string(), swapped, 2); }),
                 "the training set has 2"));
  auto grey = std::make_shared<InMemoryImageDataset>(32, 32, 1, std::vector<uint8_t>(10 * 1024),
                                                     std::vector<int64_t>(10, 0), 10);
  CHECK(contains(error_of([&] {
                   write_cifar10_bin((dir.path / "x").string(), {grey, grey}, 2);
                 }),
                 "the binary version's test batch holds 2 images, the test set has 10"));
  auto grey_test = std::make_shared<InMemoryImageDataset>(32, 32, 1, std::vector<uint8_t>(2 * 1024),
                                                          std::vector<int64_t>(2, 0), 10);
  CHECK(contains(error_of([&] {
                   write_cifar10_bin((dir.path / "x").string(), {grey, grey_test}, 2);
                 }),
                 "example 0: CIFAR-10 images are 32×32×3, this one is 32×32×1"));
}
