// MNIST and Fashion-MNIST: the idx files they are published in, raw or gzipped.
//
// An idx file is a 4-byte magic number, one 4-byte size per dimension, then the values, all
// big-endian:
//   images  0x00000803 (unsigned bytes, 3 dimensions)  count, rows, columns, then pixels
//   labels  0x00000801 (unsigned bytes, 1 dimension)   count, then one byte per label
// Whether a file is gzipped is read from its first two bytes (1f 8b), not from its name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ember::data {

struct IdxImages {
  size_t count = 0;
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // count × height × width bytes, image after image, row by row
};

// Parse an idx file's bytes (already unpacked); `name` is used in messages. A wrong magic
// number, a header cut short or a payload of the wrong length is an error naming the file,
// with the expected and actual byte counts.
IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& name);
std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& name);

// The same from a file, raw or gzipped.
IdxImages read_idx_images(const std::string& path);
std::vector<uint8_t> read_idx_labels(const std::string& path);

// Write idx files, gzipped or not, atomically (a temporary file renamed into place).
// `pixels` holds count × height × width bytes; `labels` one byte each.
void write_idx_images(const std::string& path, size_t count, int height, int width,
                      const std::vector<uint8_t>& pixels, bool gzipped);
void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels, bool gzipped);

// Which data set the files hold; only the class names differ.
enum class MnistKind { Mnist, FashionMnist };

// "0" .. "9" for MNIST; "T-shirt/top", "Trouser", ... "Ankle boot" for Fashion-MNIST.
std::vector<std::string> mnist_class_names(MnistKind kind);

// The four files of an MNIST-style folder.
struct MnistFiles {
  std::string train_images, train_labels, test_images, test_labels;
};

// Finds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte (each also with .gz, or with the dotted ".idx3-ubyte" spelling of
// some mirrors) in `folder`, or in torchvision's layout FOLDER/MNIST/raw/ (FashionMNIST/raw/
// for Fashion-MNIST) or FOLDER/raw/. When a file is missing the error lists every place looked
// in and how to get the data.
MnistFiles find_mnist_files(const std::string& folder, MnistKind kind = MnistKind::Mnist);

// True when find_mnist_files would find at least the training images (a quick look, for
// programs that guess what a folder holds).
bool has_mnist_files(const std::string& folder, MnistKind kind = MnistKind::Mnist);

// The training and test sets as InMemoryImageDataset (height × width × 1, 10 classes). Checks
// that image and label counts agree, that both sets have one image size, and that every label
// is in 0..9 (naming the file and the index of a bad one).
TrainTest load_mnist(const std::string& folder, MnistKind kind = MnistKind::Mnist);

}  // namespace ember::data
