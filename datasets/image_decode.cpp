#include "datasets/image_decode.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include "datasets/archive.h"  // read_file_bytes
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
// stb_image_write 1.16's JPEG bit writer (stbiw__jpg_writeBits) shifts a negative int left:
// undefined in C++17, though compilers all do the obvious thing and C++20 defines it. The
// sanitizer build (EMBER_SANITIZE) stops there, so that one function is built without the
// shift check. The macro renames it and puts the attribute before its name: in its definition
// the attribute applies; before its calls GCC ignores it with a warning, silenced here.
#if defined(__GNUC__) && !defined(__clang__)
#define stbiw__jpg_writeBits __attribute__((no_sanitize("shift"))) jpeg_write_bits_unchecked
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
#include <stb_image_write.h>
#pragma GCC diagnostic pop
#undef stbiw__jpg_writeBits
#else
#include <stb_image_write.h>
#endif

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

// Walks a JPEG's segments (0xFF, marker, 2-byte length, contents; after a start-of-scan, the
// entropy-coded data up to the next marker) the way stb_image does, and checks its Huffman
// tables: what is wrong, or "" when nothing is. stb_image 2.27 writes past its tables when a
// table claims more than 256 codes, and decodes a scan with a table never defined (memory it
// never set), so such files must not reach it. Like stb, the walk skips stray bytes between
// segments and reads bytes past the end of the file as zeros. Other faults, a cut-off file
// included, are left to stb, which reports them without harm.
std::string jpeg_segment_problem(const uint8_t* bytes, size_t size) {
  auto byte_at = [&](size_t i) -> size_t { return i < size ? bytes[i] : 0; };
  bool defined[2][4] = {};  // [DC, AC][table id]: set by a DHT segment
  bool progressive = false;
  size_t position = 2;  // after the start-of-image marker
  while (position + 1 < size) {
    const size_t marker = bytes[position + 1];
    if (bytes[position] != 0xFF || marker == 0xFF) {  // a stray byte, or fill before a marker
      ++position;
      continue;
    }
    if (marker == 0xD9) return "";                               // end of image
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {  // RSTn, TEM: no length
      position += 2;
      continue;
    }
    const size_t end = position + 2 + (byte_at(position + 2) << 8 | byte_at(position + 3));
    if (marker == 0xC2) progressive = true;  // start of a progressive frame
    if (marker == 0xC4) {  // DHT: tables of (class << 4 | id, 16 code counts, the symbols)
      for (size_t table = position + 4; table < end && table < size;) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte_at(table + i);
        if (codes > 256) {
          return str_cat("corrupt JPEG: Huffman table at byte ", table, " has ", codes,
                         " codes (at most 256)");
        }
        if (table + 17 > end) {
          return str_cat("corrupt JPEG: Huffman table at byte ", table, " is cut short");
        }
        const size_t table_class = byte_at(table) >> 4, id = byte_at(table) & 15;
        if (table_class <= 1 && id <= 3) defined[table_class][id] = true;  // else stb refuses
        table += 17 + codes;
      }
    }
    if (marker == 0xDA) {  // SOS: components, each (id, DC table << 4 | AC table); then the
                           // spectral range start, end, and the approximation bits
      const size_t components = byte_at(position + 4);
      const size_t spectral_start = byte_at(position + 5 + 2 * components);
      const size_t refining = byte_at(position + 7 + 2 * components) >> 4;
      // Baseline scans use both tables; progressive DC scans the DC table (none when
      // refining), progressive AC scans the AC table.
      const bool uses_dc = !progressive || (spectral_start == 0 && refining == 0);
      const bool uses_ac = !progressive || spectral_start > 0;
      for (size_t k = 0; k < components; ++k) {
        const size_t tables = byte_at(position + 6 + 2 * k);
        const size_t dc = tables >> 4, ac = tables & 15;
        if ((uses_dc && dc <= 3 && !defined[0][dc]) || (uses_ac && ac <= 3 && !defined[1][ac])) {
          return str_cat("corrupt JPEG: the scan at byte ", position,
                         " uses a Huffman table that was never defined");
        }
      }
    }
    position = end;
    if (marker == 0xDA) {  // skip the entropy-coded data (in it, 0xFF 0x00 is a byte)
      while (position + 1 < size &&
             !(bytes[position] == 0xFF && bytes[position + 1] != 0x00 &&
               !(bytes[position + 1] >= 0xD0 && bytes[position + 1] <= 0xD7))) {
        ++position;
      }
    }
  }
  return "";
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
  const std::string problem =
      is_png ? png_chunk_problem(bytes, size) : jpeg_segment_problem(bytes, size);
  EMBER_CHECK(problem.empty(), name, ": cannot decode: ", problem);
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
