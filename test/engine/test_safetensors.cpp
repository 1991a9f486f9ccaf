// safetensors: round trips of every dtype bit for bit, the header's layout, the file PyTorch
// wrote (test/golden/write_torch_safetensors.py), an error that names the file and the problem
// for every kind of corrupt file, and atomic saves that never leave a torn or stray file.
#include <doctest/doctest.h>

#include <signal.h>        // ignoring SIGXFSZ
#include <sys/resource.h>  // RLIMIT_FSIZE: a write that fails halfway
#include <sys/stat.h>      // chmod
#include <unistd.h>        // geteuid

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "support.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}
// A file from a header's text and a data section, as a writer (or a broken one) makes it.
std::string file_bytes(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}
uint64_t header_length_of(const std::string& bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// A tensor's elements as raw bytes, row-major.
std::string raw_bytes(const Tensor& t) {
  std::string bytes(static_cast<size_t>(t.numel()) * t.element_size(), '\0');
  to_host(t, t.dtype(), bytes.data());
  return bytes;
}
template <typename T>
Tensor from_values(const std::vector<T>& values, DType dtype, const Shape& shape) {
  return from_host(values.data(), dtype, shape, Device::cpu());
}
float float_of_bits(uint32_t bits) {
  return bits_float(bits);
}

// One tensor of every dtype, with values that catch byte-order and rounding mistakes: signed
// zeros, infinities, NaN payloads, subnormals, the integer extremes.
NamedTensors every_dtype() {
  const float inf = std::numeric_limits<float>::infinity();
  const double dinf = std::numeric_limits<double>::infinity();
  return {
      {"f32", tensor(std::vector<float>{1.5f, -0.0f, inf, float_of_bits(0x7fc01234u),
                                        float_of_bits(0x00000001u), -3.25e38f},
                     {2, 3})},
      {"f64", tensor(std::vector<double>{0.1, -dinf, 5e-324, -0.0}, {2, 2})},
      {"bf16", from_values(std::vector<uint16_t>{0x3f80, 0x8000, 0x7f80, 0x7fc1, 0x0001},
                           DType::BF16, {5})},
      {"f16", from_values(std::vector<uint16_t>{0x3c00, 0x8000, 0x7bff, 0x7e01, 0x0001, 0xfc00},
                          DType::F16, {3, 2})},
      {"i64", tensor(std::vector<int64_t>{std::numeric_limits<int64_t>::min(), -1, 0,
                                          std::numeric_limits<int64_t>::max()})},
      {"i32", tensor(std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -1, 7,
                                          std::numeric_limits<int32_t>::max()},
                     {1, 4})},
      {"u8", tensor(std::vector<uint8_t>{0, 1, 127, 128, 255})},
      {"scalar", scalar_tensor(-2.5, DType::F64)},
      {"empty", zeros({0, 3}, DType::F32)},
      {"empty_u8", zeros({4, 0}, DType::U8)},
  };
}

void check_same_tensors(const NamedTensors& expected, const SafetensorsFile& loaded) {
  REQUIRE(loaded.tensors.size() == expected.size());
  for (const auto& [name, want] : expected) {
    INFO("tensor ", name);
    REQUIRE(loaded.contains(name));
    const Tensor& got = loaded.at(name);
    CHECK(got.dtype() == want.dtype());
    CHECK(got.shape() == want.shape());
    CHECK(got.device() == Device::cpu());
    CHECK(raw_bytes(got) == raw_bytes(want));
  }
}

}  // namespace

TEST_CASE("safetensors round trip keeps every dtype bit for bit") {
  TemporaryDirectory dir("ember-safetensors");
  const NamedTensors tensors = every_dtype();
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, tensors);
  const SafetensorsFile loaded = load_safetensors(path);
  CHECK(loaded.source == path);
  CHECK(loaded.metadata.empty());
  check_same_tensors(tensors, loaded);
  CHECK(loaded.at("scalar").dim() == 0);
  CHECK(loaded.at("scalar").item<double>() == -2.5);
  CHECK(loaded.at("empty").numel() == 0);

  // The same bytes in memory as on disk, and the same tensors back.
  const std::string bytes = serialize_safetensors(tensors);
  CHECK(bytes == read_file(path));
  check_same_tensors(tensors, parse_safetensors(bytes));
}

TEST_CASE("safetensors saves non-contiguous tensors as their row-major values") {
  const Tensor base = arange(24, DType::F32).reshape({2, 3, 4});
  const NamedTensors views = {
      {"transposed", base.transpose(0, 2)},
      {"stepped", base.slice(2, 0, 4, 2)},
      {"narrowed", base.narrow(1, 1, 2)},
      {"expanded", tensor(std::vector<double>{1, 2, 3}).expand({2, 3})},
      {"selected", base.select(0, 1).t()},
  };
  for (const auto& [name, view] : views) CHECK_FALSE(view.is_contiguous());
  const SafetensorsFile loaded = parse_safetensors(serialize_safetensors(views));
  for (const auto& [name, view] : views) {
    INFO("tensor ", name);
    CHECK(loaded.at(name).shape() == view.shape());
    CHECK(raw_bytes(loaded.at(name)) == raw_bytes(view.contiguous()));
  }
  CHECK(loaded.at("transposed").to_vector<float>()[1] == 12.0f);  // element [0, 0, 1]
  CHECK(loaded.at("expanded").to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("safetensors metadata round trips and is optional") {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"epoch", "12"}, {"empty", ""}, {"note", "Grüße, \"quoted\"\n"}};
  const NamedTensors one = {{"w", ones({2}, DType::F32)}};
  const std::string bytes = serialize_safetensors(one, metadata);
  CHECK(parse_safetensors(bytes).metadata == metadata);
  CHECK(contains(bytes, "\"__metadata__\""));
  CHECK_FALSE(contains(serialize_safetensors(one), "__metadata__"));

  TemporaryDirectory dir("ember-safetensors");
  save_safetensors(dir.file("m.safetensors"), one, metadata);
  CHECK(load_safetensors(dir.file("m.safetensors")).metadata == metadata);
}

TEST_CASE("safetensors header is padded so the data section is 8-byte aligned") {
  // The exact bytes of a small file: length, sorted JSON, spaces, data.
  const std::string small = serialize_safetensors({{"a", ones({2}, DType::F32)}});
  const std::string json = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  CHECK(small ==
        file_bytes(json + std::string(8 - json.size() % 8, ' '), raw_bytes(ones({2}, DType::F32))));

  for (size_t name_length = 1; name_length <= 16; ++name_length) {
    INFO("name length ", name_length);
    const std::string bytes = serialize_safetensors(
        {{std::string(name_length, 'n'), ones({3}, DType::U8)}, {"w", ones({1}, DType::F64)}});
    const uint64_t n = header_length_of(bytes);
    CHECK((8 + n) % 8 == 0);
    const std::string header = bytes.substr(8, n);
    const size_t close = header.find_last_of('}');
    CHECK(header.find_first_not_of(' ', close + 1) == std::string::npos);
    CHECK(n - (close + 1) < 8);  // fewer than 8 spaces of padding
  }
}

TEST_CASE("safetensors writer lays tensors out widest first and back to back") {
  // Back to back from offset 0 to the end is what the reference reader demands; widest first
  // puts every tensor at a multiple of its element size.
  const NamedTensors tensors = {{"b_u8", ones({3}, DType::U8)},
                                {"c_f32", ones({2}, DType::F32)},
                                {"a_f16", ones({1}, DType::F16)},
                                {"d_i64", ones({1}, DType::I64)},
                                {"e_f32", ones({1}, DType::F32)}};
  const SafetensorsFile loaded = parse_safetensors(serialize_safetensors(tensors));
  CHECK(loaded.names() == std::vector<std::string>{"d_i64", "c_f32", "e_f32", "a_f16", "b_u8"});
  const std::string bytes = serialize_safetensors(tensors);
  const std::string header = bytes.substr(8, header_length_of(bytes));
  CHECK(contains(header, R"("d_i64":{"data_offsets":[0,8])"));
  CHECK(contains(header, R"("c_f32":{"data_offsets":[8,16])"));
  CHECK(contains(header, R"("e_f32":{"data_offsets":[16,20])"));
  CHECK(contains(header, R"("a_f16":{"data_offsets":[20,22])"));
  CHECK(contains(header, R"("b_u8":{"data_offsets":[22,25])"));
  CHECK(bytes.size() == 8 + header.size() + 25);
}

TEST_CASE("safetensors reader accepts any order gaps and BOOL") {
  // Offsets out of key order, 4 unused bytes between tensors, a BOOL tensor read as u8.
  const std::string header = R"({"z":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},)"
                             R"("a":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}})";
  const std::string data = std::string(
      "\x05\0\0\0"
      "\xff\xff\xff\xff"
      "\x01\x00",
      10);
  const SafetensorsFile loaded = parse_safetensors(file_bytes(header, data));
  CHECK(loaded.names() == std::vector<std::string>{"z", "a"});
  CHECK(loaded.at("z").to_vector<int32_t>() == std::vector<int32_t>{5});
  CHECK(loaded.at("a").dtype() == DType::U8);
  CHECK(loaded.at("a").to_vector<uint8_t>() == std::vector<uint8_t>{1, 0});
}

TEST_CASE("safetensors at names the file and some of the tensors it holds") {
  const SafetensorsFile loaded = parse_safetensors(
      serialize_safetensors({{"layer1.weight", ones({1})}, {"layer1.bias", zeros({1})}}),
      "model.safetensors");
  const std::string message = error_of([&] { loaded.at("layer2.weight"); });
  CHECK(contains(message, "model.safetensors"));
  CHECK(contains(message, "'layer2.weight'"));
  CHECK(contains(message, "'layer1.weight'"));
  CHECK(contains(message, "'layer1.bias'"));
  CHECK_FALSE(loaded.contains("layer2.weight"));

  NamedTensors many;
  for (int i = 0; i < 20; ++i) many.emplace_back("t" + std::to_string(i), ones({1}));
  CHECK(contains(error_of([&] { parse_safetensors(serialize_safetensors(many)).at("x"); }),
                 "and 12 more"));

  const std::map<std::string, Tensor> by_name = to_map(loaded);
  CHECK(by_name.size() == 2);
  CHECK(by_name.at("layer1.weight").item<float>() == 1.0f);
}

// ---- the file PyTorch wrote ----------------------------------------------------------------

namespace {
struct GoldenTensor {
  const char* name;
  DType dtype;
  Shape shape;
  double sum;
  std::vector<double> first;  // the first elements, exact
};
// Printed by test/golden/write_torch_safetensors.py, in file order (widest dtype, then name).
// BOOL (extra.bool) reads as u8.
const std::vector<GoldenTensor> kTorchState = {
    {"bn.num_batches_tracked", DType::I64, {}, 1.0, {1.0}},
    {"extra.f64", DType::F64, {2, 2}, -1e+300, {0.1, -1e+300, 3.0, 5e-324}},
    {"bn.bias", DType::F32, {4}, 0.0, {0.0, 0.0, 0.0, 0.0}},
    {"bn.running_mean",
     DType::F32,
     {4},
     0.009274833370000124,
     {-0.016707370057702065, 0.004524606745690107, 0.009417088702321053, 0.012040507979691029}},
    {"bn.running_var",
     DType::F32,
     {4},
     3.725606322288513,
     {0.9203763008117676, 0.9401749968528748, 0.932256817817688, 0.9327982068061829}},
    {"bn.weight", DType::F32, {4}, 4.0, {1.0, 1.0, 1.0, 1.0}},
    {"conv.bias",
     DType::F32,
     {4},
     0.053672933019697666,
     {-0.01060392428189516, 0.028895428404211998, -0.07881414145231247, 0.1141955703496933}},
    {"conv.weight",
     DType::F32,
     {4, 3, 3, 3},
     -0.7475195649312809,
     {-0.0014408392598852515, 0.10323861986398697, -0.15839511156082153, -0.14163152873516083}},
    {"extra.empty", DType::F32, {0, 3}, 0.0, {}},
    {"extra.i32", DType::I32, {4}, -2.0, {-2147483648.0, -1.0, 0.0, 2147483647.0}},
    {"extra.scalar", DType::F32, {}, 7.25, {7.25}},
    {"fc.bias",
     DType::F32,
     {5},
     0.013494744896888733,
     {0.1060972660779953, 0.008198544383049011, -0.08331096172332764, -0.04478561878204346}},
    {"fc.weight",
     DType::F32,
     {5, 64},
     0.06659345328807831,
     {-0.07606738805770874, 0.11342126131057739, 0.08566248416900635, -0.1054103672504425}},
    {"extra.bf16", DType::BF16, {6}, 65281.64162445068, {1.0, -2.5, 3.140625, 0.00099945068359375}},
    {"extra.f16", DType::F16, {2, 3}, 65502.83325201273, {1.0, -2.5, 0.333251953125, 65504.0}},
    {"extra.bool", DType::U8, {3}, 2.0, {1.0, 0.0, 1.0}},
    {"extra.u8", DType::U8, {5}, 511.0, {0.0, 1.0, 127.0, 128.0}},
};
}  // namespace

TEST_CASE("safetensors reads the state dict PyTorch wrote") {
  const std::string path = EMBER_GOLDEN_DIR "/torch_small_state.safetensors";
  const SafetensorsFile loaded = load_safetensors(path);
  REQUIRE(loaded.tensors.size() == kTorchState.size());
  for (size_t i = 0; i < kTorchState.size(); ++i) {
    const GoldenTensor& want = kTorchState[i];
    const auto& [name, got] = loaded.tensors[i];
    INFO("tensor ", want.name);
    CHECK(name == want.name);
    CHECK(got.dtype() == want.dtype);
    CHECK(got.shape() == want.shape);
    const std::vector<double> values = got.to_vector<double>();
    double sum = 0;
    for (double v : values) sum += v;
    CHECK(sum == doctest::Approx(want.sum).epsilon(1e-12));
    REQUIRE(values.size() >= want.first.size());
    for (size_t k = 0; k < want.first.size(); ++k) CHECK(values[k] == want.first[k]);
  }
  CHECK(loaded.at("bn.num_batches_tracked").item<int64_t>() == 1);
  CHECK(loaded.metadata.at("format") == "pt");

  // Written back by ember and read again: the same tensors.
  TemporaryDirectory dir("ember-safetensors");
  save_safetensors(dir.file("again.safetensors"), loaded.tensors, loaded.metadata);
  const SafetensorsFile again = load_safetensors(dir.file("again.safetensors"));
  check_same_tensors(loaded.tensors, again);
  CHECK(again.metadata == loaded.metadata);
}

// ---- corrupt files -------------------------------------------------------------------------

namespace {
struct CorruptFile {
  const char* problem;
  std::string bytes;
  std::vector<std::string> message_parts;
};

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

std::vector<CorruptFile> corrupt_files() {
  const std::string f32x4 = entry("x", "F32", "[4]", "[0,16]");
  const std::string data16(16, '\x01');
  const std::string valid = serialize_safetensors({{"x", ones({100}, DType::F32)}});
  return {
      {"shorter than the length field", "abc", {"3 bytes", "shorter than the 8-byte"}},
      {"header length beyond the file",
       u64_le(1000) + "{}",
       {"header length is 1000 bytes", "only 2 bytes follow"}},
      {"header length beyond the cap",
       u64_le(uint64_t{1} << 40) + "{}",
       {"header length 1099511627776", "limit of 100000000"}},
      {"json that does not parse", file_bytes("{\"x\":"), {"not valid JSON", "parse error"}},
      {"invalid UTF-8", file_bytes("{\"\xff\":1}"), {"not valid JSON"}},
      {"header not an object", file_bytes("[1,2]"), {"must be a JSON object", "array"}},
      {"entry not an object", file_bytes("{\"x\":3}"), {"entry 'x' must be an object", "number"}},
      {"entry without offsets",
       file_bytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[4]}}", data16),
       {"tensor 'x' has no \"data_offsets\""}},
      {"unknown dtype",
       file_bytes("{" + entry("x", "Q7", "[4]", "[0,16]") + "}", data16),
       {"tensor 'x' has unknown dtype \"Q7\"", "F32, F64, BF16, F16, I64, I32, U8, BOOL"}},
      {"dtype ember cannot hold",
       file_bytes("{" + entry("x", "I8", "[16]", "[0,16]") + "}", data16),
       {"tensor 'x' has dtype I8, which ember cannot hold"}},
      {"negative dimension",
       file_bytes("{" + entry("x", "F32", "[2,-2]", "[0,16]") + "}", data16),
       {"tensor 'x' has shape [2,-2]", "negative dimension"}},
      {"fractional dimension",
       file_bytes("{" + entry("x", "F32", "[4.5]", "[0,16]") + "}", data16),
       {"tensor 'x' has shape [4.5]", "must be integers"}},
      {"shape not an array",
       file_bytes("{" + entry("x", "F32", "4", "[0,16]") + "}", data16),
       {"tensor 'x': shape must be an array"}},
      {"element count overflows",
       file_bytes("{" + entry("x", "F32", "[4611686018427387904,4]", "[0,16]") + "}", data16),
       {"tensor 'x'", "overflows"}},
      {"offsets reversed",
       file_bytes("{" + entry("x", "F32", "[4]", "[16,0]") + "}", data16),
       {"tensor 'x' has data_offsets [16,0]", "0 <= begin <= end"}},
      {"offsets not a pair",
       file_bytes("{" + entry("x", "F32", "[4]", "[0,8,16]") + "}", data16),
       {"tensor 'x' has data_offsets [0,8,16]", "expected [begin, end]"}},
      {"negative offset",
       file_bytes("{" + entry("x", "F32", "[4]", "[-4,12]") + "}", data16),
       {"tensor 'x' has data_offsets [-4,12]"}},
      {"end beyond the data section",
       file_bytes("{" + entry("x", "F32", "[100]", "[0,400]") + "}", data16),
       {"tensor 'x' needs bytes [0, 400)", "data section holds 16 bytes"}},
      {"byte count not numel times element size",
       file_bytes("{" + entry("x", "F32", "[2,3]", "[0,16]") + "}", data16),
       {"tensor 'x' of dtype F32 and shape [2, 3] needs 24 bytes", "span 16 bytes"}},
      {"overlapping tensors",
       file_bytes(
           "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
           data16),
       {"tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap"}},
      {"tensor inside another",
       file_bytes("{" + entry("big", "U8", "[16]", "[0,16]") + "," +
                      entry("small", "U8", "[2]", "[8,10]") + "}",
                  data16),
       {"'big'", "'small'", "overlap"}},
      {"tensor listed twice",
       file_bytes("{" + f32x4 + "," + f32x4 + "}", data16),
       {"tensor 'x' appears twice"}},
      {"field listed twice",
       file_bytes("{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[4],"
                  "\"data_offsets\":[0,16]}}",
                  data16),
       {"key 'dtype' appears twice"}},
      {"metadata value not a string",
       file_bytes("{" + f32x4 + ",\"__metadata__\":{\"epoch\":3}}", data16),
       {"__metadata__ values must be strings", "'epoch' holds 3"}},
      {"metadata not an object",
       file_bytes("{" + f32x4 + ",\"__metadata__\":[]}", data16),
       {"__metadata__ must be an object"}},
      {"truncated data",
       valid.substr(0, valid.size() - 10),
       {"tensor 'x' needs bytes [0, 400)", "holds 390 bytes", "truncated"}},
      {"truncated header", valid.substr(0, 20), {"only 12 bytes follow", "truncated"}},
  };
}
}  // namespace

TEST_CASE("safetensors rejects every corrupt file naming the file and the problem") {
  TemporaryDirectory dir("ember-safetensors");
  for (const CorruptFile& corrupt : corrupt_files()) {
    INFO("corrupt file: ", corrupt.problem);
    const std::string path = dir.file("broken.safetensors");
    write_file(path, corrupt.bytes);
    const std::string from_disk = error_of([&] { load_safetensors(path); });
    const std::string from_memory =
        error_of([&] { parse_safetensors(corrupt.bytes, "in-memory checkpoint"); });
    INFO("error from disk: ", from_disk);
    INFO("error from memory: ", from_memory);
    CHECK(contains(from_disk, path + ": "));
    CHECK(contains(from_memory, "in-memory checkpoint: "));
    for (const std::string& part : corrupt.message_parts) {
      CHECK(contains(from_disk, part));
      CHECK(contains(from_memory, part));
    }
  }
}

TEST_CASE("safetensors load names a file it cannot open") {
  TemporaryDirectory dir("ember-safetensors");
  const std::string missing = dir.file("missing.safetensors");
  const std::string message = error_of([&] { load_safetensors(missing); });
  CHECK(contains(message, missing));
  CHECK(contains(message, "No such file or directory"));
  CHECK(contains(error_of([&] { load_safetensors(dir.path.string()); }), "not a regular file"));
}

// ---- atomic saves --------------------------------------------------------------------------

TEST_CASE("safetensors save replaces an existing file and leaves nothing else") {
  TemporaryDirectory dir("ember-safetensors");
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"w", ones({2}, DType::F32)}});
  save_safetensors(path, {{"v", full({3}, 7, DType::I64)}}, {{"step", "2"}});
  const SafetensorsFile loaded = load_safetensors(path);
  CHECK(loaded.names() == std::vector<std::string>{"v"});
  CHECK(loaded.at("v").to_vector<int64_t>() == std::vector<int64_t>{7, 7, 7});
  CHECK(loaded.metadata.at("step") == "2");
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

  // A file with no tensors at all is valid too.
  save_safetensors(path, {});
  CHECK(load_safetensors(path).tensors.empty());
}

TEST_CASE("safetensors failed save leaves the old file and no temporary file") {
  TemporaryDirectory dir("ember-safetensors");
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"old", ones({4}, DType::F32)}});
  const std::string old_bytes = read_file(path);
  auto check_untouched = [&] {
    CHECK(read_file(path) == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  };

  SUBCASE("duplicate names") {
    const std::string message = error_of([&] {
      save_safetensors(path, {{"w", ones({1})}, {"b", ones({1})}, {"w", ones({2})}});
    });
    CHECK(contains(message, path));
    CHECK(contains(message, "tensor name 'w' is used twice"));
    check_untouched();
  }
  SUBCASE("reserved name") {
    CHECK(contains(error_of([&] {
                     save_safetensors(path, {{"__metadata__", ones({1})}});
                   }),
                   "reserved"));
    check_untouched();
  }
  SUBCASE("undefined tensor") {
    const std::string message = error_of([&] {
      save_safetensors(path, {{"w", ones({1})}, {"broken", Tensor()}});
    });
    CHECK(contains(message, path));
    CHECK(contains(message, "tensor 'broken' is undefined"));
    check_untouched();
  }
  SUBCASE("directory that does not exist") {
    const std::string elsewhere = dir.file("no-such-folder/model.safetensors");
    const std::string message = error_of([&] { save_safetensors(elsewhere, {{"w", ones({1})}}); });
    CHECK(contains(message, elsewhere));
    CHECK(contains(message, "No such file or directory"));
    check_untouched();
  }
  SUBCASE("read-only directory") {
    // Root writes anywhere, so the case only proves something for other users (an early
    // return would also hide the subcases after this one from doctest).
    if (geteuid() != 0) {
      fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
      const std::string message = error_of([&] { save_safetensors(path, {{"w", ones({1})}}); });
      fs::permissions(dir.path, fs::perms::owner_all);
      CHECK(contains(message, path));
      CHECK(contains(message, "Permission denied"));
      check_untouched();
    }
  }
  SUBCASE("a write that fails halfway") {
    // A file-size limit makes write() fail with EFBIG after the first 64 KiB of a 1 MiB
    // tensor: the temporary file exists and is half written when the error comes.
    struct rlimit saved;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::string message = error_of([&] {
      save_safetensors(path, {{"big", zeros({256 * 1024}, DType::F32)}});
    });
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);
    CHECK(contains(message, path));
    CHECK(contains(message, "File too large"));
    check_untouched();
  }
}
