#include "datasets/image_decode.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/error.h"

// stb_image and stb_image_write are compiled here and nowhere else, private to this file
// (STATIC), reading only JPEG and PNG, from memory only: files are read by read_file_bytes,
// whose errors name the file.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#include <stb_image.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

// stbi_failure_reason() is a global unless stb can make it thread-local; decoders run on
// several threads at once, so a shared one would report another thread's reason.
#ifndef STBI_THREAD_LOCAL
#error "stb_image keeps its failure reason in a global here: ember needs a thread-local one"
#endif

namespace ember::data {

namespace {

void check_channels(int channels, const std::string& name) {
  EMBER_CHECK(channels == 1 || channels == 3, name, ": images decode to 1 (grey) or 3 (RGB) ",
              "channels, not ", channels);
}

void check_encodable(const Image& image, const char* format) {
  EMBER_CHECK(image.height > 0 && image.width > 0 && image.channels >= 1 && image.channels <= 4,
              "encode ", format, ": cannot encode a ", image.height, "×", image.width, "×",
              image.channels, " image (1 to 4 channels, positive sizes)");
  EMBER_CHECK(
      image.pixels.size() == static_cast<size_t>(image.height) * image.width * image.channels,
      "encode ", format, ": a ", image.height, "×", image.width, "×", image.channels,
      " image holds ", image.pixels.size(), " bytes instead of ",
      static_cast<size_t>(image.height) * image.width * image.channels);
}

// stb_image_write hands its output over in pieces through this callback.
void append_to_vector(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  EMBER_CHECK(file != nullptr, path, ": cannot write: ", std::strerror(errno));
  const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), file.get());
  EMBER_CHECK(written == bytes.size(), path, ": cannot write: ", std::strerror(errno));
  EMBER_CHECK(std::fclose(file.release()) == 0, path, ": cannot write: ", std::strerror(errno));
}

uint32_t big_endian_u32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Walks a PNG's chunks (length, 4-letter type, data, CRC) up to IEND: what is wrong with their
// layout, or "" when nothing is. Checked before stb sees the file, for two reasons: a file cut
// short is then reported as such (stb says what it found instead: "outofdata"), and stb's
// message for an unknown critical chunk lives in one buffer shared by all threads.
std::string png_chunk_problem(const uint8_t* bytes, size_t size) {
  size_t position = 8;  // after the signature
  while (position + 8 <= size) {
    const uint64_t length = big_endian_u32(bytes + position);
    const std::string type(reinterpret_cast<const char*>(bytes + position + 4), 4);
    if (!std::all_of(type.begin(), type.end(), [](char c) { return std::isalpha(uint8_t(c)); })) {
      return str_cat("corrupt PNG: no chunk type at byte ", position + 4);
    }
    const uint64_t end = position + 12 + length;  // 4 length + 4 type + data + 4 CRC
    if (end > size) {
      return str_cat("truncated: PNG chunk ", type, " at byte ", position, " needs ",
                     end - position, " bytes, ", size - position, " remain");
    }
    if (type == "IEND") return "";
    // An uppercase first letter marks a chunk a decoder must understand.
    const bool critical = std::isupper(uint8_t(type[0]));
    if (critical && type != "IHDR" && type != "PLTE" && type != "IDAT" && type != "CgBI") {
      return str_cat("unknown critical PNG chunk ", type, " at byte ", position);
    }
    position = static_cast<size_t>(end);
  }
  return "truncated: the PNG ends without its IEND chunk";
}

}  // namespace

void decode_image(const uint8_t* bytes, size_t size, int channels, Image& out,
                  const std::string& name) {
  check_channels(channels, name);
  EMBER_CHECK(size > 0, name, ": cannot decode: empty file");
  EMBER_CHECK(size <= static_cast<size_t>(INT_MAX), name, ": cannot decode: ", size,
              " bytes is more than an image file may hold (2 GiB)");
  const bool is_png = size >= 8 && std::memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0;
  const bool is_jpeg = size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  EMBER_CHECK(is_png || is_jpeg, name, ": cannot decode: neither a JPEG nor a PNG file");
  if (is_png) {
    const std::string problem = png_chunk_problem(bytes, size);
    EMBER_CHECK(problem.empty(), name, ": cannot decode: ", problem);
  }
  int width = 0, height = 0, channels_in_file = 0;
  // A few of stb's failures set no reason; clear this thread's last one so that it is not
  // reported for this file.
  stbi__g_failure_reason = nullptr;
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(bytes, static_cast<int>(size), &width, &height, &channels_in_file,
                            channels),
      &stbi_image_free);
  if (decoded == nullptr) {
    // stb tries PNG before JPEG, and a few of its JPEG failures set no reason of their own,
    // which leaves the PNG test's "bad png sig" behind.
    const char* reason = stbi_failure_reason();
    if (reason == nullptr || (is_jpeg && std::strcmp(reason, "bad png sig") == 0)) {
      reason = is_jpeg ? "corrupt JPEG data" : "corrupt PNG data";
    }
    // stb's reason for a cut-off JPEG speaks of what it found instead ("expected marker");
    // the missing end-of-image marker says what happened.
    const bool jpeg_end_missing = is_jpeg && !(bytes[size - 2] == 0xFF && bytes[size - 1] == 0xD9);
    throw Error(str_cat(name, ": cannot decode: ", reason,
                        jpeg_end_missing ? " (truncated: no JPEG end-of-image marker)" : ""));
  }
  out.resize(height, width, channels);
  std::memcpy(out.pixels.data(), decoded.get(), out.bytes());
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  EMBER_CHECK(file != nullptr, path, ": cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  EMBER_CHECK(!std::ferror(file.get()), path, ": cannot read: ", std::strerror(errno));
  return bytes;
}

void decode_image_file(const std::string& path, int channels, Image& out) {
  check_channels(channels, path);
  decode_image(read_file_bytes(path), channels, out, path);
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_encodable(image, "PNG");
  std::vector<uint8_t> bytes;
  const int ok =
      stbi_write_png_to_func(&append_to_vector, &bytes, image.width, image.height, image.channels,
                             image.pixels.data(), image.width * image.channels);
  EMBER_CHECK(ok != 0, "encode PNG: stb_image_write failed on a ", image.height, "×", image.width,
              "×", image.channels, " image");
  return bytes;
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  check_encodable(image, "JPEG");
  EMBER_CHECK(quality >= 1 && quality <= 100, "encode JPEG: quality must be in 1..100, got ",
              quality);
  std::vector<uint8_t> bytes;
  const int ok = stbi_write_jpg_to_func(&append_to_vector, &bytes, image.width, image.height,
                                        image.channels, image.pixels.data(), quality);
  EMBER_CHECK(ok != 0, "encode JPEG: stb_image_write failed on a ", image.height, "×", image.width,
              "×", image.channels, " image");
  return bytes;
}

void write_png(const std::string& path, const Image& image) {
  write_bytes(path, encode_png(image));
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  write_bytes(path, encode_jpeg(image, quality));
}

}  // namespace ember::data
