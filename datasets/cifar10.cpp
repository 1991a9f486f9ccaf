#include "datasets/cifar10.h"

#include <filesystem>
#include <memory>
#include <optional>

#include "datasets/archive.h"
#include "datasets/image_folder.h"
#include "datasets/pickle.h"
#include "engine/error.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

constexpr size_t kSide = 32;
constexpr size_t kPlane = kSide * kSide;    // 1024
constexpr size_t kImageBytes = 3 * kPlane;  // 3072
constexpr size_t kRecordBytes = 1 + kImageBytes;
constexpr int kTrainBatches = 5;

// One image from three planes (r..., g..., b...) to interleaved (y, x, c).
void planes_to_interleaved(const uint8_t* planes, uint8_t* out) {
  for (size_t i = 0; i < kPlane; ++i) {
    out[3 * i] = planes[i];
    out[3 * i + 1] = planes[kPlane + i];
    out[3 * i + 2] = planes[2 * kPlane + i];
  }
}

void interleaved_to_planes(const uint8_t* image, uint8_t* out) {
  for (size_t i = 0; i < kPlane; ++i) {
    out[i] = image[3 * i];
    out[kPlane + i] = image[3 * i + 1];
    out[2 * kPlane + i] = image[3 * i + 2];
  }
}

std::string batch_file(int index, bool binary) {
  const std::string stem = index < kTrainBatches ? str_cat("data_batch_", index + 1) : "test_batch";
  return binary ? stem + ".bin" : stem;
}

}  // namespace

std::vector<std::string> cifar10_class_names() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

Cifar10Records parse_cifar10_bin(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() % kRecordBytes != 0) {
    const size_t whole = bytes.size() / kRecordBytes + 1;
    throw Error(str_cat(name, ": truncated: expected ", whole * kRecordBytes, " bytes (", whole,
                        " records of ", kRecordBytes, " bytes), got ", bytes.size()));
  }
  const size_t count = bytes.size() / kRecordBytes;
  Cifar10Records records;
  records.pixels.resize(count * kImageBytes);
  records.labels.resize(count);
  for (size_t r = 0; r < count; ++r) {
    const uint8_t* record = bytes.data() + r * kRecordBytes;
    EMBER_CHECK(record[0] <= 9, name, ": record ", r, " has label ", int(record[0]),
                ", outside 0..9");
    records.labels[r] = record[0];
    planes_to_interleaved(record + 1, records.pixels.data() + r * kImageBytes);
  }
  return records;
}

Cifar10Records read_cifar10_bin_file(const std::string& path) {
  return parse_cifar10_bin(read_file_bytes(path), path);
}

Cifar10Records read_cifar10_py_batch(const std::vector<uint8_t>& bytes, const std::string& name) {
  const Pickle pickle = Pickle::parse(bytes, name);
  const PickleValue& batch = pickle.root();
  EMBER_CHECK(batch.kind == PickleValue::Kind::Dict, name,
              ": a CIFAR-10 python batch is a dict, found a ", batch.describe());
  const auto keys = [&] {
    std::string list;
    for (const std::string& key : batch.keys()) list += str_cat(list.empty() ? "" : ", ", key);
    return list;
  };
  const PickleValue* data = batch.get("data");
  const PickleValue* labels = batch.get("labels");
  EMBER_CHECK(data && labels, name, ": a CIFAR-10 batch has 'data' and 'labels' entries, this one ",
              "has ", keys(), " (CIFAR-100 batches have 'fine_labels' instead)");
  EMBER_CHECK(data->kind == PickleValue::Kind::Array && data->dtype == "u1" &&
                  data->shape.size() == 2 && data->shape[1] == static_cast<int64_t>(kImageBytes),
              name, ": 'data' should be a numpy array u1 (N, 3072), found a ", data->describe());
  EMBER_CHECK(labels->kind == PickleValue::Kind::List, name,
              ": 'labels' should be a list, found a ", labels->describe());
  const size_t count = static_cast<size_t>(data->shape[0]);
  EMBER_CHECK(labels->items.size() == count, name, ": ", count, " images but ",
              labels->items.size(), " labels");
  Cifar10Records records;
  records.pixels.resize(count * kImageBytes);
  records.labels.resize(count);
  const auto* planes = reinterpret_cast<const uint8_t*>(data->bytes.data());
  for (size_t r = 0; r < count; ++r) {
    const PickleValue* label = labels->items[r];
    EMBER_CHECK(label->kind == PickleValue::Kind::Int, name, ": label ", r, " is a ",
                label->describe(), ", not an int");
    EMBER_CHECK(label->integer >= 0 && label->integer <= 9, name, ": record ", r, " has label ",
                label->integer, ", outside 0..9");
    records.labels[r] = label->integer;
    planes_to_interleaved(planes + r * kImageBytes, records.pixels.data() + r * kImageBytes);
  }
  return records;
}

std::string cifar10_format_name(Cifar10Format format) {
  switch (format) {
    case Cifar10Format::Binary:
      return "CIFAR-10 binary batches (cifar-10-batches-bin)";
    case Cifar10Format::Python:
      return "CIFAR-10 python batches (cifar-10-batches-py)";
    case Cifar10Format::BinaryArchive:
      return "CIFAR-10 binary archive (cifar-10-binary.tar.gz)";
    case Cifar10Format::PythonArchive:
      return "CIFAR-10 python archive (cifar-10-python.tar.gz)";
    case Cifar10Format::ImageFolder:
      return "CIFAR-10 image folder (train/<class>, test/<class>)";
  }
  return "?";
}

namespace {

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}
bool is_folder(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// Where a data set was found; for an archive, its members once opened.
struct Found {
  Cifar10Location location;
  std::optional<TarArchive> archive;
  std::string member_folder;  // inside the archive: "cifar-10-batches-bin/"
};

// Opens the archive and finds its batches: binary or python, and under which folder. What the
// archive holds decides, whatever its name says.
void open_archive(Found& found) {
  if (!found.archive) found.archive = TarArchive::open(found.location.path);
  for (const TarArchive::Member& member : found.archive->members()) {
    for (bool binary : {true, false}) {
      const std::string first = batch_file(0, binary);
      const std::string& name = member.name;
      if (name.size() < first.size() ||
          name.compare(name.size() - first.size(), first.size(), first) != 0)
        continue;
      const std::string folder = name.substr(0, name.size() - first.size());
      if (!folder.empty() && folder.back() != '/') continue;
      found.location.format = binary ? Cifar10Format::BinaryArchive : Cifar10Format::PythonArchive;
      found.member_folder = folder;
      return;
    }
  }
  throw Error(str_cat(found.location.path, ": this archive holds no data_batch_1.bin or ",
                      "data_batch_1 (cifar-10-batches-bin/ or cifar-10-batches-py/); it has ",
                      found.archive->members().size(), " files"));
}

// The published archives' names tell their content without opening them (a 170 MB gunzip).
std::optional<Cifar10Format> archive_format_by_name(const fs::path& path) {
  if (path.filename() == "cifar-10-binary.tar.gz") return Cifar10Format::BinaryArchive;
  if (path.filename() == "cifar-10-python.tar.gz") return Cifar10Format::PythonArchive;
  return std::nullopt;
}

std::string layouts_looked_for(const std::string& path) {
  const fs::path p(path);
  return str_cat(
      "looked for\n"
      "  ",
      (p / "data_batch_1.bin").string(),
      " .. data_batch_5.bin and test_batch.bin (cifar-10-batches-bin)\n", "  ",
      (p / "data_batch_1").string(), " .. data_batch_5 and test_batch (cifar-10-batches-py)\n",
      "  ", (p / "cifar-10-batches-bin").string(), "/ or ", (p / "cifar-10-batches-py").string(),
      "/ (torchvision's root)\n", "  ", (p / "cifar-10-binary.tar.gz").string(), " or ",
      (p / "cifar-10-python.tar.gz").string(), " (the downloaded archives)\n", "  ",
      (p / "train").string(), "/<class>/ and ", (p / "test").string(),
      "/<class>/ (an image folder)\n"
      "CIFAR-10 is published at https://www.cs.toronto.edu/~kriz/cifar.html (either archive "
      "works, unpacked or not); bin/ember_data cifar-from-folder converts an image folder to the "
      "binary batches.");
}

Found locate(const std::string& path) {
  const fs::path root(path);
  Found found;
  found.location.path = path;
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    throw Error(str_cat(path, ": no such file or folder; CIFAR-10 ", layouts_looked_for(path)));
  }
  if (is_file(root)) {
    if (const auto format = archive_format_by_name(root)) {
      found.location.format = *format;
    } else {
      open_archive(found);
    }
    return found;
  }
  const auto at = [&](Cifar10Format format, const fs::path& where) {
    found.location = {format, where.string()};
    return found;
  };
  if (is_file(root / "data_batch_1.bin")) return at(Cifar10Format::Binary, root);
  if (is_file(root / "data_batch_1")) return at(Cifar10Format::Python, root);
  if (is_file(root / "cifar-10-batches-bin" / "data_batch_1.bin"))
    return at(Cifar10Format::Binary, root / "cifar-10-batches-bin");
  if (is_file(root / "cifar-10-batches-py" / "data_batch_1"))
    return at(Cifar10Format::Python, root / "cifar-10-batches-py");
  for (const char* name : {"cifar-10-binary.tar.gz", "cifar-10-python.tar.gz"}) {
    if (is_file(root / name)) return at(*archive_format_by_name(name), root / name);
  }
  if (is_folder(root / "train") && is_folder(root / "test"))
    return at(Cifar10Format::ImageFolder, root);
  throw Error(str_cat(path, ": no CIFAR-10 here; ", layouts_looked_for(path)));
}

// The batches from a folder or an archive, each checked for its record count.
TrainTest load_batches(const Found& found, size_t records_per_batch) {
  const Cifar10Format format = found.location.format;
  const bool binary = format == Cifar10Format::Binary || format == Cifar10Format::BinaryArchive;
  const bool archived = found.archive.has_value();
  Cifar10Records train, test;
  for (int index = 0; index <= kTrainBatches; ++index) {
    std::string name;
    std::vector<uint8_t> bytes;
    if (archived) {
      const std::string member = found.member_folder + batch_file(index, binary);
      name = str_cat(found.location.path, ": ", member);
      EMBER_CHECK(found.archive->find(member) != nullptr, found.location.path, ": no member ",
                  member, " (the archive is incomplete)");
      bytes = found.archive->read(member);
    } else {
      name = (fs::path(found.location.path) / batch_file(index, binary)).string();
      bytes = read_file_bytes(name);
    }
    Cifar10Records records;
    if (binary) {
      const size_t expected = records_per_batch * kRecordBytes;
      EMBER_CHECK(bytes.size() == expected, name,
                  bytes.size() < expected ? ": truncated" : ": too long", ": expected ", expected,
                  " bytes (", records_per_batch, " records of ", kRecordBytes, " bytes), got ",
                  bytes.size());
      records = parse_cifar10_bin(bytes, name);
    } else {
      records = read_cifar10_py_batch(bytes, name);
      EMBER_CHECK(records.labels.size() == records_per_batch, name, ": holds ",
                  records.labels.size(), " images, expected ", records_per_batch);
    }
    Cifar10Records& into = index < kTrainBatches ? train : test;
    into.pixels.insert(into.pixels.end(), records.pixels.begin(), records.pixels.end());
    into.labels.insert(into.labels.end(), records.labels.begin(), records.labels.end());
  }
  const std::string where = archived ? str_cat(found.location.path, ": ", found.member_folder)
                                     : found.location.path + "/";
  const std::string train_name = str_cat(
      where, binary ? "data_batch_1.bin .. data_batch_5.bin" : "data_batch_1 .. data_batch_5");
  const std::string test_name = where + batch_file(kTrainBatches, binary);
  TrainTest data;
  data.train = std::make_shared<InMemoryImageDataset>(32, 32, 3, std::move(train.pixels),
                                                      std::move(train.labels), 10,
                                                      cifar10_class_names(), train_name);
  data.test = std::make_shared<InMemoryImageDataset>(32, 32, 3, std::move(test.pixels),
                                                     std::move(test.labels), 10,
                                                     cifar10_class_names(), test_name);
  return data;
}

}  // namespace

Cifar10Location find_cifar10(const std::string& path) {
  return locate(path).location;
}

TrainTest load_cifar10(const std::string& path, size_t records_per_batch) {
  EMBER_CHECK(records_per_batch > 0, "load_cifar10: records_per_batch must be positive");
  Found found = locate(path);
  switch (found.location.format) {
    case Cifar10Format::ImageFolder:
      return load_cifar10_image_folder(found.location.path);
    case Cifar10Format::BinaryArchive:
    case Cifar10Format::PythonArchive:
      open_archive(found);
      break;
    default:
      break;
  }
  return load_batches(found, records_per_batch);
}

void write_cifar10_bin(const std::string& folder, const TrainTest& data, size_t records_per_batch) {
  EMBER_CHECK(data.train && data.test, folder, ": write_cifar10_bin needs both sets");
  EMBER_CHECK(records_per_batch > 0, folder, ": records_per_batch must be positive");
  EMBER_CHECK(data.train->size() == kTrainBatches * records_per_batch, folder,
              ": the binary version holds ", kTrainBatches, " training batches of ",
              records_per_batch, " images (", kTrainBatches * records_per_batch,
              "), the training set has ", data.train->size());
  EMBER_CHECK(data.test->size() == records_per_batch, folder, ": the binary version's test batch ",
              "holds ", records_per_batch, " images, the test set has ", data.test->size());
  std::error_code ec;
  fs::create_directories(folder, ec);
  EMBER_CHECK(is_folder(folder), folder, ": cannot create the folder (", ec.message(), ")");

  Image image;
  std::vector<uint8_t> bytes;
  for (int index = 0; index <= kTrainBatches; ++index) {
    const Dataset& set = index < kTrainBatches ? *data.train : *data.test;
    const size_t first = index < kTrainBatches ? index * records_per_batch : 0;
    bytes.assign(records_per_batch * kRecordBytes, 0);
    for (size_t r = 0; r < records_per_batch; ++r) {
      const size_t example = first + r;
      set.load_image(example, image);
      EMBER_CHECK(image.height == 32 && image.width == 32 && image.channels == 3,
                  set.source(example), ": CIFAR-10 images are 32×32×3, this one is ", image.height,
                  "×", image.width, "×", image.channels);
      const int64_t label = set.label(example);
      EMBER_CHECK(label >= 0 && label <= 9, set.source(example), ": label ", label,
                  " is outside 0..9");
      uint8_t* record = bytes.data() + r * kRecordBytes;
      record[0] = static_cast<uint8_t>(label);
      interleaved_to_planes(image.pixels.data(), record + 1);
    }
    write_file_atomically((fs::path(folder) / batch_file(index, true)).string(), bytes);
  }
  std::string meta;
  for (const std::string& name : cifar10_class_names()) meta += name + "\n";
  write_file_atomically((fs::path(folder) / "batches.meta.txt").string(), meta.data(), meta.size());
}

}  // namespace ember::data
