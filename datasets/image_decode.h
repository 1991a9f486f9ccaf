// JPEG and PNG files to and from ember's Image (8-bit pixels, (y, x, c) interleaved).
//
// Decoding is stb_image restricted to JPEG and PNG; encoding is stb_image_write, here so that
// tests and tools can write image files without their own copy of it. Every function is safe
// to call from several threads at once: stb keeps its failure reason per thread.
//
// A file that cannot be decoded is an ember::Error naming it and saying why, in stb's words:
//   "train/cat/0003.jpg: cannot decode: bad huffman code"
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ember::data {

// Decodes the JPEG or PNG held in `bytes` into `out`, reusing its buffer, with `channels`
// channels: 3 gives RGB (grey images are repeated, alpha dropped), 1 gives grey (luma).
// `name` (a file name) starts every error message.
void decode_image(const uint8_t* bytes, size_t size, int channels, Image& out,
                  const std::string& name);
inline void decode_image(const std::vector<uint8_t>& bytes, int channels, Image& out,
                         const std::string& name) {
  decode_image(bytes.data(), bytes.size(), channels, out, name);
}

// Reads and decodes the file at `path` (JPEG or PNG, told apart by content, not by name).
// Errors name `path`.
void decode_image_file(const std::string& path, int channels, Image& out);

// Encodes an image with 1 to 4 channels (grey, grey + alpha, RGB, RGBA) as PNG (lossless) or
// JPEG (`quality` in 1..100; alpha is dropped).
std::vector<uint8_t> encode_png(const Image& image);
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 95);

// The same, written to a file (replaced if it exists).
void write_png(const std::string& path, const Image& image);
void write_jpeg(const std::string& path, const Image& image, int quality = 95);

}  // namespace ember::data
