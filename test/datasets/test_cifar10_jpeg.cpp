// The real CIFAR-10 images, stored as JPEG (cifar10-jpeg.tar.gz in EMBER_SHARED_DATA_DIR):
// unpacked into a temporary folder and read by load_cifar10_image_folder. Checks the counts
// per split and class, and compares a few images with an independent decoder (Pillow, through
// /usr/bin/python3). Skipped, visibly, where the archive is absent.
#include <doctest/doctest.h>
#include <unistd.h>  // access

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "datasets/cifar10.h"
#include "datasets/image_folder.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string quoted(const std::string& text) {
  return "'" + text + "'";
}

}  // namespace

TEST_CASE("the cifar10 jpeg copy loads 60000 images that agree with pillow") {
#if defined(__SANITIZE_ADDRESS__)
  // 60,000 decodes under AddressSanitizer take minutes; the decoder's memory safety is checked
  // by the damaged-file cases of test_image_decode, which the sanitizer pass does run.
  MESSAGE("[ember] SKIPPED: the full CIFAR-10 decode is too slow under the sanitizers");
  return;
#endif
  const std::string archive = std::string(EMBER_SHARED_DATA_DIR) + "/cifar10-jpeg.tar.gz";
  if (!std::filesystem::exists(archive)) {
    MESSAGE("[ember] SKIPPED: no CIFAR-10 JPEG archive at " << archive);
    return;
  }
  // Sixty thousand small files are made and removed in a second or two in memory (tmpfs), but
  // can take minutes on a busy disk: use /dev/shm where there is one. (An absolute prefix
  // replaces the temporary-directory path it is appended to.)
  // The unpacked files take about 240 MB of tmpfs pages (60,000 files of one 4 KB page each,
  // plus the binary batches): a container's small default /dev/shm (64 MB) is not used.
  std::error_code no_space;
  const bool shared_memory =
      std::filesystem::is_directory("/dev/shm") && access("/dev/shm", W_OK) == 0 &&
      std::filesystem::space("/dev/shm", no_space).available > (uintmax_t{1} << 30) && !no_space;
  ember::test::TemporaryDirectory folder(shared_memory ? "/dev/shm/ember-cifar10-jpeg"
                                                       : "ember-cifar10-jpeg");
  auto start = std::chrono::steady_clock::now();
  REQUIRE(std::system(
              ("tar xzf " + quoted(archive) + " -C " + quoted(folder.path.string())).c_str()) == 0);
  const double unpack_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const TrainTest cifar = load_cifar10_image_folder(folder.path.string());
  const double load_seconds = seconds_since(start);
  MESSAGE("CIFAR-10 JPEG: unpacked in " << unpack_seconds << " s, 60000 images decoded in "
                                        << load_seconds << " s");

  const auto& train = dynamic_cast<const InMemoryImageDataset&>(*cifar.train);
  const auto& test = dynamic_cast<const InMemoryImageDataset&>(*cifar.test);
  REQUIRE(train.size() == 50000);
  REQUIRE(test.size() == 10000);
  CHECK(train.class_names() == std::vector<std::string>{"airplane", "automobile", "bird", "cat",
                                                        "deer", "dog", "frog", "horse", "ship",
                                                        "truck"});
  const std::vector<int64_t> train_labels = train.labels(), test_labels = test.labels();
  for (int64_t label = 0; label < 10; ++label) {
    CHECK(std::count(train_labels.begin(), train_labels.end(), label) == 5000);
    CHECK(std::count(test_labels.begin(), test_labels.end(), label) == 1000);
    // Classes follow one another: example 5000·label + n is <class>/<n as four digits>.jpg.
    CHECK(train.label(static_cast<size_t>(label) * 5000) == label);
    CHECK(train.label(static_cast<size_t>(label) * 5000 + 4999) == label);
  }

  // The binary writer (what `ember_data cifar-from-folder` runs) and the binary reader give back
  // the folder's images and labels byte for byte, through the format detection of load_cifar10.
  {
    start = std::chrono::steady_clock::now();
    const TrainTest detected = load_cifar10(folder.path.string());
    ember::test::TemporaryDirectory binary(shared_memory ? "/dev/shm/ember-cifar10-bin"
                                                         : "ember-cifar10-bin");
    write_cifar10_bin(binary.path.string(), detected);
    const TrainTest reread = load_cifar10(binary.path.string());
    MESSAGE("folder -> cifar-10-batches-bin -> memory in " << seconds_since(start) << " s");
    REQUIRE(find_cifar10(binary.path.string()).format == Cifar10Format::Binary);
    const auto& binary_train = dynamic_cast<const InMemoryImageDataset&>(*reread.train);
    const auto& binary_test = dynamic_cast<const InMemoryImageDataset&>(*reread.test);
    CHECK(binary_train.pixels() == train.pixels());
    CHECK(binary_train.labels() == train_labels);
    CHECK(binary_test.pixels() == test.pixels());
    CHECK(binary_test.labels() == test_labels);
  }

  // Three images decoded by Pillow (libjpeg) for comparison. JPEG decoders may differ by a few
  // levels (IDCT rounding, chroma upsampling), so the bound is ±3 per byte, not equality.
  struct Probe {
    const InMemoryImageDataset* data;
    size_t index;
    std::string file;
  };
  const std::vector<Probe> probes = {{&train, 0, "train/airplane/0000.jpg"},
                                     {&train, 6 * 5000 + 1234, "train/frog/1234.jpg"},
                                     {&test, 9999, "test/truck/0999.jpg"}};
  const std::string raw = folder.file("pillow.raw");
  std::string command =
      "/usr/bin/python3 -c 'import sys; from PIL import Image; "
      "open(sys.argv[1], \"wb\").write(b\"\".join(Image.open(p).convert(\"RGB\").tobytes() "
      "for p in sys.argv[2:]))' " +
      quoted(raw);
  for (const Probe& probe : probes) command += " " + quoted(folder.file(probe.file));
  command += " 2>/dev/null";
  if (!std::filesystem::exists("/usr/bin/python3") || std::system(command.c_str()) != 0) {
    MESSAGE("no Pillow at /usr/bin/python3: pixels not compared with another decoder");
    return;
  }
  const std::string pillow = ember::test::read_file(raw);
  REQUIRE(pillow.size() == probes.size() * 3072);
  int worst = 0;
  size_t equal = 0;
  for (size_t p = 0; p < probes.size(); ++p) {
    const uint8_t* ours = probes[p].data->image_data(probes[p].index);
    for (size_t i = 0; i < 3072; ++i) {
      const int difference = std::abs(int(ours[i]) - int(uint8_t(pillow[p * 3072 + i])));
      worst = std::max(worst, difference);
      equal += difference == 0;
    }
  }
  MESSAGE("against Pillow: largest difference " << worst << " levels, " << equal << " of "
                                                << probes.size() * 3072 << " bytes equal");
  CHECK(worst <= 3);
}
