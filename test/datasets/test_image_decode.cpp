// JPEG and PNG decoding and encoding: exact PNG round trips, JPEG within a tolerance, channel
// conversion, buffer reuse, the error for every kind of broken file, and decoding on several
// threads at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "datasets/archive.h"  // read_file_bytes
#include "datasets/image_decode.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::data;
using ember::test::contains;
using ember::test::error_of;

namespace {

// A smooth ramp (JPEG keeps it well) whose pixels depend on `seed`; below 256 for sizes up to
// 48×48 and seeds up to 4.
Image gradient_image(int height, int width, int channels, int seed) {
  Image image;
  image.resize(height, width, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        image.at(y, x)[c] = static_cast<uint8_t>(seed * 5 + c * 20 + x * 2 + y * 2);
      }
    }
  }
  return image;
}

// An image of random bytes: nothing for a lossy codec to smooth over.
Image noise_image(int height, int width, int channels, unsigned seed) {
  Image image;
  image.resize(height, width, channels);
  for (uint8_t& byte : image.pixels) {
    seed = seed * 1664525u + 1013904223u;
    byte = static_cast<uint8_t>(seed >> 24);
  }
  return image;
}

int max_difference(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  }
  return worst;
}

std::vector<uint8_t> truncated(std::vector<uint8_t> bytes, size_t keep) {
  bytes.resize(keep);
  return bytes;
}

// A PNG whose compressed pixel data (inside IDAT) is damaged while its chunks are whole: the
// failure comes from stb's zlib decoder.
std::vector<uint8_t> damaged_png_pixels(std::vector<uint8_t> png) {
  for (size_t i = 0; i + 4 < png.size(); ++i) {
    if (std::memcmp(&png[i], "IDAT", 4) == 0) {
      for (size_t j = i + 6; j < i + 40; ++j) png[j] = 0xFF;
      break;
    }
  }
  return png;
}

// A JPEG whose first Huffman table (DHT segment) claims 16 × 255 codes: stb_image 2.27 would
// write past its tables, so ember catches it first.
std::vector<uint8_t> overfull_jpeg_table(std::vector<uint8_t> jpeg) {
  for (size_t i = 0; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC4) {
      for (size_t j = i + 5; j < i + 21; ++j) jpeg[j] = 0xFF;
      break;
    }
  }
  return jpeg;
}

// A JPEG whose first Huffman table keeps its number of codes but can no longer be a prefix
// code (two codes of 1 bit leave no room for longer ones): the failure comes from stb's JPEG
// decoder. The table is the standard luminance DC one (counts 0, 1, 5, 1, ...).
std::vector<uint8_t> impossible_jpeg_code(std::vector<uint8_t> jpeg) {
  for (size_t i = 0; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC4) {
      REQUIRE(jpeg[i + 5] == 0);  // codes of 1 bit
      REQUIRE(jpeg[i + 7] >= 2);  // codes of 3 bits
      jpeg[i + 5] += 2;
      jpeg[i + 7] -= 2;
      break;
    }
  }
  return jpeg;
}

// A JPEG whose second Huffman table (AC table 0, the luminance one) is relabelled as DC table 0:
// the scans then use an AC table that was never defined.
std::vector<uint8_t> missing_jpeg_table(std::vector<uint8_t> jpeg) {
  for (size_t i = 0; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC4) {
      size_t codes = 0;
      for (size_t j = i + 5; j < i + 21; ++j) codes += jpeg[j];
      const size_t second = i + 4 + 17 + codes;
      REQUIRE(jpeg[second] == 0x10);  // AC, id 0
      jpeg[second] = 0x00;
      break;
    }
  }
  return jpeg;
}

}  // namespace

TEST_CASE("png round trips exactly in rgb and grey") {
  for (int channels : {1, 3}) {
    const Image original = noise_image(7, 11, channels, 5);
    const std::vector<uint8_t> png = encode_png(original);
    CHECK(png.size() > 8);
    CHECK(png[1] == 'P');
    Image decoded;
    decode_image(png, channels, decoded, "noise.png");
    CHECK(decoded.height == 7);
    CHECK(decoded.width == 11);
    CHECK(decoded.channels == channels);
    CHECK(decoded.pixels == original.pixels);
  }
}

TEST_CASE("decoding converts between grey and rgb as asked") {
  // Grey decoded as RGB repeats the value in each channel.
  const Image grey = noise_image(4, 5, 1, 9);
  Image as_rgb;
  decode_image(encode_png(grey), 3, as_rgb, "grey.png");
  REQUIRE(as_rgb.channels == 3);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) {
      CHECK(as_rgb.at(y, x)[0] == grey.at(y, x)[0]);
      CHECK(as_rgb.at(y, x)[1] == grey.at(y, x)[0]);
      CHECK(as_rgb.at(y, x)[2] == grey.at(y, x)[0]);
    }
  }
  // An RGB image whose channels are equal decodes to that value as grey (luma weights sum
  // to one), and a pure colour's luma lies strictly between black and white.
  Image rgb;
  rgb.resize(2, 2, 3);
  for (int i = 0; i < 3; ++i) {
    rgb.at(0, 0)[i] = 17;
    rgb.at(0, 1)[i] = 255;
    rgb.at(1, 0)[i] = 0;
    rgb.at(1, 1)[i] = i == 1 ? 255 : 0;  // pure green
  }
  Image as_grey;
  decode_image(encode_png(rgb), 1, as_grey, "rgb.png");
  REQUIRE(as_grey.channels == 1);
  CHECK(as_grey.at(0, 0)[0] == 17);
  CHECK(as_grey.at(0, 1)[0] == 255);
  CHECK(as_grey.at(1, 0)[0] == 0);
  CHECK(as_grey.at(1, 1)[0] > 100);  // green carries most of the luma (about 0.59)
  CHECK(as_grey.at(1, 1)[0] < 200);

  // RGBA: the alpha channel is dropped, the colour kept.
  Image rgba = noise_image(3, 3, 4, 2);
  Image without_alpha;
  decode_image(encode_png(rgba), 3, without_alpha, "rgba.png");
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 3; ++x) {
      for (int c = 0; c < 3; ++c) CHECK(without_alpha.at(y, x)[c] == rgba.at(y, x)[c]);
    }
  }
}

TEST_CASE("jpeg round trips within a tolerance that grows as quality falls") {
  const Image original = gradient_image(32, 48, 3, 4);
  Image high, low;
  decode_image(encode_jpeg(original, 95), 3, high, "high.jpg");
  decode_image(encode_jpeg(original, 20), 3, low, "low.jpg");
  CHECK(high.height == 32);
  CHECK(high.width == 48);
  const int high_error = max_difference(high, original);
  const int low_error = max_difference(low, original);
  CHECK(high_error <= 3);
  CHECK(low_error > high_error);
  // Decoding is deterministic: the same bytes give the same pixels.
  Image again;
  decode_image(encode_jpeg(original, 95), 3, again, "high.jpg");
  CHECK(again.pixels == high.pixels);
  CHECK(encode_jpeg(original, 95) == encode_jpeg(original, 95));
}

TEST_CASE("decoding reuses the image buffer") {
  Image image;
  decode_image(encode_png(noise_image(16, 16, 3, 1)), 3, image, "big.png");
  const uint8_t* buffer = image.pixels.data();
  const size_t capacity = image.pixels.capacity();
  decode_image(encode_png(noise_image(8, 8, 3, 2)), 3, image, "small.png");
  CHECK(image.bytes() == 8 * 8 * 3);
  CHECK(image.pixels.data() == buffer);
  CHECK(image.pixels.capacity() == capacity);
}

TEST_CASE("files are written and read back") {
  ember::test::TemporaryDirectory folder;
  const Image original = noise_image(5, 6, 3, 3);
  write_png(folder.file("a.png"), original);
  write_jpeg(folder.file("a.jpg"), gradient_image(8, 8, 3, 1), 90);
  CHECK(ember::test::read_file(folder.file("a.png")).size() == encode_png(original).size());

  Image from_file, from_bytes;
  decode_image_file(folder.file("a.png"), 3, from_file);
  CHECK(from_file.pixels == original.pixels);
  // A JPEG read from its file decodes like its bytes do.
  decode_image_file(folder.file("a.jpg"), 3, from_file);
  decode_image(read_file_bytes(folder.file("a.jpg")), 3, from_bytes, "a.jpg");
  CHECK(from_file.pixels == from_bytes.pixels);
  // The format is told by content, not by name.
  std::filesystem::rename(folder.file("a.png"), folder.file("really_png.jpg"));
  decode_image_file(folder.file("really_png.jpg"), 3, from_file);
  CHECK(from_file.pixels == original.pixels);

  CHECK(contains(error_of([&] { write_png(folder.file("no/such/folder/b.png"), original); }),
                 "no/such/folder/b.png: cannot write: No such file or directory"));
}

TEST_CASE("broken image files give errors naming the file and the reason") {
  ember::test::TemporaryDirectory folder;
  const std::vector<uint8_t> jpeg = encode_jpeg(gradient_image(24, 24, 3, 2), 90);
  const std::vector<uint8_t> png = encode_png(noise_image(24, 24, 3, 2));
  Image image;
  auto decode_error = [&](const std::vector<uint8_t>& bytes, const std::string& name) {
    return error_of([&] { decode_image(bytes, 3, image, name); });
  };

  const std::string cut_jpeg = decode_error(truncated(jpeg, jpeg.size() / 2), "cat/0003.jpg");
  CHECK(contains(cut_jpeg, "cat/0003.jpg: cannot decode: "));
  CHECK(contains(cut_jpeg, "truncated"));
  // Even the end-of-image marker alone missing is caught.
  CHECK(contains(decode_error(truncated(jpeg, jpeg.size() - 2), "end.jpg"),
                 "end.jpg: cannot decode: "));
  // The PNG written here: signature, IHDR at byte 8, one IDAT at byte 33, IEND.
  const size_t idat_bytes = png.size() - 33 - 12;
  CHECK(decode_error(truncated(png, png.size() / 2), "cut.png") ==
        str_cat("cut.png: cannot decode: truncated: PNG chunk IDAT at byte 33 needs ", idat_bytes,
                " bytes, ", png.size() / 2 - 33, " remain"));
  CHECK(decode_error(truncated(png, 20), "header.png") ==
        "header.png: cannot decode: truncated: PNG chunk IHDR at byte 8 needs 25 bytes, 12 remain");
  CHECK(decode_error(truncated(png, png.size() - 12), "no_end.png") ==
        "no_end.png: cannot decode: truncated: the PNG ends without its IEND chunk");
  std::vector<uint8_t> unknown_chunk = png;
  std::memcpy(&unknown_chunk[33 + 4], "ABCD", 4);
  CHECK(decode_error(unknown_chunk, "chunk.png") ==
        "chunk.png: cannot decode: unknown critical PNG chunk ABCD at byte 33");
  const std::string bad_data_error = decode_error(damaged_png_pixels(png), "data.png");
  CHECK(contains(bad_data_error, "data.png: cannot decode: "));
  CHECK(!contains(bad_data_error, "truncated"));
  CHECK(!contains(bad_data_error, "chunk"));

  std::vector<uint8_t> garbage(500);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 7919 >> 3);
  CHECK(decode_error(garbage, "garbage.jpg") ==
        "garbage.jpg: cannot decode: neither a JPEG nor a PNG file");
  CHECK(decode_error({}, "empty.png") == "empty.png: cannot decode: empty file");

  CHECK(contains(decode_error(overfull_jpeg_table(jpeg), "overfull.jpg"),
                 "overfull.jpg: cannot decode: corrupt JPEG: Huffman table at byte "));
  CHECK(contains(decode_error(overfull_jpeg_table(jpeg), "overfull.jpg"),
                 " has 4080 codes (at most 256)"));
  CHECK(contains(decode_error(missing_jpeg_table(jpeg), "table.jpg"),
                 " uses a Huffman table that was never defined"));
  CHECK(decode_error(impossible_jpeg_code(jpeg), "code.jpg") ==
        "code.jpg: cannot decode: bad code lengths");

  CHECK(contains(error_of([&] { decode_image_file(folder.file("missing.png"), 3, image); }),
                 "missing.png: no such file"));
  CHECK(contains(error_of([&] { decode_image(png, 2, image, "two.png"); }),
                 "two.png: images decode to 1 (grey) or 3 (RGB) channels, not 2"));
  CHECK(contains(error_of([&] { encode_jpeg(gradient_image(2, 2, 3, 0), 0); }),
                 "quality must be in 1..100, got 0"));
  Image wrong_size;
  wrong_size.height = wrong_size.width = 2;
  wrong_size.channels = 3;
  CHECK(contains(error_of([&] { encode_png(wrong_size); }), "holds 0 bytes instead of 12"));
}

TEST_CASE("decoding on several threads at once keeps each thread's result and reason apart") {
  // Good and broken files of both formats, decoded over and over by four threads: every good
  // decode must match, and every failure must carry its own file's reason (stb keeps the
  // reason per thread).
  const Image png_original = noise_image(20, 20, 3, 11);
  const std::vector<uint8_t> png = encode_png(png_original);
  const std::vector<uint8_t> jpeg = encode_jpeg(gradient_image(40, 40, 3, 3), 90);
  Image jpeg_reference;
  decode_image(jpeg, 3, jpeg_reference, "reference.jpg");
  // Two failures whose reasons come from stb itself, different for each.
  const std::vector<uint8_t> bad_png = damaged_png_pixels(png);
  const std::vector<uint8_t> bad_jpeg = impossible_jpeg_code(jpeg);
  auto error_alone = [](const std::vector<uint8_t>& bytes, const std::string& name) {
    Image image;
    return error_of([&] { decode_image(bytes, 3, image, name); });
  };
  const std::string bad_png_error = error_alone(bad_png, "bad.png");
  const std::string bad_jpeg_error = error_alone(bad_jpeg, "bad.jpg");
  REQUIRE(contains(bad_png_error, "bad.png: cannot decode: "));
  REQUIRE(bad_jpeg_error == "bad.jpg: cannot decode: bad code lengths");

  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Image image;
      for (int round = 0; round < 200; ++round) {
        switch ((round + t) % 4) {
          case 0:
            decode_image(png, 3, image, "good.png");
            if (image.pixels != png_original.pixels) ++mismatches;
            break;
          case 1:
            decode_image(jpeg, 3, image, "good.jpg");
            if (image.pixels != jpeg_reference.pixels) ++mismatches;
            break;
          case 2:
            if (error_of([&] { decode_image(bad_png, 3, image, "bad.png"); }) != bad_png_error)
              ++mismatches;
            break;
          default:
            if (error_of([&] { decode_image(bad_jpeg, 3, image, "bad.jpg"); }) != bad_jpeg_error)
              ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(mismatches.load() == 0);
}
