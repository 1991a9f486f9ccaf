// CIFAR-10 in every form a user is likely to have on disk: the binary version
// (cifar-10-batches-bin), the python version torchvision downloads (cifar-10-batches-py), either
// still in its downloaded .tar.gz, or an image folder train/<class>/ + test/<class>/.
//
// Both published versions hold 5 training batches of 10,000 images and one test batch of
// 10,000. An image is stored as three 32×32 planes (1024 red bytes, 1024 green, 1024 blue, row
// by row); ember's images interleave the channels (y, x, c), so every image is converted as it
// is read. A binary record is one label byte followed by those 3072 bytes; a python batch is a
// pickled dict {b'data': uint8 array (10000, 3072), b'labels': [10000 ints], ...}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ember::data {

// airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck: the label order.
std::vector<std::string> cifar10_class_names();

// Images converted to 32×32×3 (y, x, c) and their labels (0..9).
struct Cifar10Records {
  std::vector<uint8_t> pixels;  // labels.size() × 3072 bytes
  std::vector<int64_t> labels;
};

// One binary batch file: any whole number of 3073-byte records (a partial record is an error
// with the expected and actual byte counts; a label above 9 names the file and the record).
Cifar10Records parse_cifar10_bin(const std::vector<uint8_t>& bytes, const std::string& name);
Cifar10Records read_cifar10_bin_file(const std::string& path);
// One python batch (a pickle's bytes): data and labels of any equal length.
Cifar10Records read_cifar10_py_batch(const std::vector<uint8_t>& bytes, const std::string& name);

// The forms load_cifar10 recognises.
enum class Cifar10Format {
  Binary,         // a folder of data_batch_1.bin .. data_batch_5.bin and test_batch.bin
  Python,         // a folder of data_batch_1 .. data_batch_5 and test_batch (pickles)
  BinaryArchive,  // cifar-10-binary.tar.gz (or any tar holding cifar-10-batches-bin/)
  PythonArchive,  // cifar-10-python.tar.gz (or any tar holding cifar-10-batches-py/)
  ImageFolder,    // train/<class>/*.png|jpg and test/<class>/...
};
std::string cifar10_format_name(Cifar10Format format);

struct Cifar10Location {
  Cifar10Format format;
  std::string path;  // the folder holding the batches, the archive, or the image folder's root
};

// Where the data behind `path` is and in which form. `path` may be a folder of batches, a folder
// that holds one (torchvision's root: cifar-10-batches-bin/ or cifar-10-batches-py/), an archive,
// a folder that holds one of the downloaded archives, or an image folder's root. Otherwise an
// error lists every layout looked for and how to get the data. An archive under its published
// name (cifar-10-binary.tar.gz, cifar-10-python.tar.gz) is taken at its word without being
// unpacked; another archive is opened to see what it holds.
Cifar10Location find_cifar10(const std::string& path);

// The 50,000 training and 10,000 test images as InMemoryImageDataset (32×32×3, labels 0..9,
// the class names above). Each batch must hold exactly `records_per_batch` records (10,000 in
// the published data; tests write smaller ones).
TrainTest load_cifar10(const std::string& path, size_t records_per_batch = 10000);

// Writes `data` as the binary version into `folder` (created if needed): data_batch_1.bin ..
// data_batch_5.bin holding the training images in order, `records_per_batch` each,
// test_batch.bin, and batches.meta.txt (the class names, one a line). Each file is written
// atomically. The training set must hold 5 × records_per_batch images and the test set
// records_per_batch, all 32×32×3 with labels 0..9.
void write_cifar10_bin(const std::string& folder, const TrainTest& data,
                       size_t records_per_batch = 10000);

}  // namespace ember::data
