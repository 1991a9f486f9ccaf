// safetensors reading and writing (the layout is drawn in safetensors.h).
//
// Reading: the header is parsed and every entry checked against the size of the data section
// before any tensor is allocated; files are then read tensor by tensor straight into each
// tensor's storage, so loading a checkpoint never holds it twice in memory.
//
// Writing: one routine lays out the header and streams each tensor's bytes to a sink: a string
// in memory, or a temporary file that becomes `path` only once it is complete and on the disk.
#include "engine/safetensors.h"

#include <fcntl.h>     // open
#include <sys/stat.h>  // fstat
#include <unistd.h>    // write, pread, fsync, close, unlink, getpid

#include <algorithm>   // stable_sort, min
#include <cerrno>      // errno
#include <cstring>     // strerror
#include <functional>  // the byte sink
#include <limits>
#include <random>  // unique temporary names
#include <set>

#include <nlohmann/json.hpp>  // the header

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is copied as is: ember needs a little-endian host"
#endif

namespace ember {

namespace {

using json = nlohmann::json;

// A header larger than this is not a header (the reference implementation's limit too).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// ---- dtypes --------------------------------------------------------------------------------

struct FormatDType {
  const char* name;
  DType dtype;
};
// What ember reads; the first entry for a DType is what it writes. PyTorch's bool is one byte
// holding 0 or 1, so it reads as ember's boolean, u8.
constexpr FormatDType kReadableDTypes[] = {
    {"F32", DType::F32}, {"F64", DType::F64}, {"BF16", DType::BF16}, {"F16", DType::F16},
    {"I64", DType::I64}, {"I32", DType::I32}, {"U8", DType::U8},     {"BOOL", DType::U8},
};
// Valid in the format, but with no ember dtype to hold them.
constexpr const char* kUnsupportedDTypes[] = {"I8",  "I16",     "U16",     "U32",
                                              "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                              "C64", "F4",      "F6_E2M3", "F6_E3M2"};

std::string readable_dtype_list() {
  std::string list;
  for (const FormatDType& d : kReadableDTypes)
    list += (list.empty() ? "" : ", ") + std::string(d.name);
  return list;
}

// ---- errors --------------------------------------------------------------------------------

// Every error starts with the file (or buffer) it is about.
template <typename... Args>
[[noreturn]] void fail(const std::string& source, const Args&... args) {
  throw Error(str_cat(source, ": ", args...));
}

std::string system_error() {
  return std::strerror(errno);
}

std::string quoted(const std::string& name) {
  return "'" + name + "'";
}

// ---- reading: the header -------------------------------------------------------------------

// One tensor's entry, checked: its bytes lie inside the data section and match its shape.
struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin;  // in the data section
  uint64_t end;
};

struct Header {
  uint64_t data_start = 0;           // in the file: 8 + the header length
  std::vector<TensorEntry> tensors;  // by offset
  std::map<std::string, std::string> metadata;
};

uint64_t read_u64_le(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// The header length from the first 8 bytes of a `total_size`-byte file, checked against both.
uint64_t header_length(const unsigned char* first8, uint64_t total_size,
                       const std::string& source) {
  if (total_size < 8)
    fail(source, "file is ", total_size,
         " bytes, shorter than the 8-byte header length that starts a safetensors file");
  const uint64_t length = read_u64_le(first8);
  if (length > kMaxHeaderBytes)
    fail(source, "header length ", length, " is larger than the limit of ", kMaxHeaderBytes,
         " bytes (not a safetensors file?)");
  if (length > total_size - 8)
    fail(source, "header length is ", length, " bytes but only ", total_size - 8,
         " bytes follow the length field (truncated file, or not a safetensors file?)");
  return length;
}

// Parses JSON, rejecting a key that appears twice in one object (the parser would keep the
// last silently, and a tensor listed twice is a broken file).
json parse_json(const char* text, size_t length, const std::string& source) {
  std::vector<std::set<std::string>> keys_per_object;
  auto reject_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys_per_object.emplace_back();
    if (event == json::parse_event_t::object_end) keys_per_object.pop_back();
    if (event == json::parse_event_t::key) {
      const std::string key = parsed.get<std::string>();
      if (!keys_per_object.back().insert(key).second)
        fail(source, depth == 1 ? "tensor " : "key ", quoted(key), " appears twice in the header");
    }
    return true;
  };
  try {
    return json::parse(text, text + length, reject_duplicates);
  } catch (const json::exception& e) {
    fail(source, "header is not valid JSON: ", e.what());
  }
}

// A JSON integer in [0, 2^63) as int64; -1 for anything else (negative, fractional, a string).
int64_t non_negative_integer(const json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    return v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? static_cast<int64_t>(v)
                                                                           : -1;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<int64_t>();
  return -1;
}

DType parse_dtype(const json& entry, const std::string& name, const std::string& source) {
  const json& dtype = entry.at("dtype");
  if (!dtype.is_string())
    fail(source, "tensor ", quoted(name), ": dtype must be a string, found ", dtype.dump());
  const std::string text = dtype.get<std::string>();
  for (const FormatDType& d : kReadableDTypes)
    if (text == d.name) return d.dtype;
  for (const char* unsupported : kUnsupportedDTypes)
    if (text == unsupported)
      fail(source, "tensor ", quoted(name), " has dtype ", text,
           ", which ember cannot hold (it reads ", readable_dtype_list(), ")");
  fail(source, "tensor ", quoted(name), " has unknown dtype \"", text,
       "\" (known: ", readable_dtype_list(), ")");
}

Shape parse_shape(const json& entry, const std::string& name, const std::string& source) {
  const json& shape = entry.at("shape");
  if (!shape.is_array())
    fail(source, "tensor ", quoted(name), ": shape must be an array of sizes, found ",
         shape.dump());
  Shape sizes;
  for (const json& size : shape) {
    const int64_t s = non_negative_integer(size);
    if (s < 0)
      fail(source, "tensor ", quoted(name), " has shape ", shape.dump(),
           size.is_number_integer() && size.get<int64_t>() < 0 ? ", with a negative dimension"
                                                               : ": sizes must be integers",
           " (expected non-negative integers)");
    sizes.push_back(s);
  }
  return sizes;
}

// numel * element size, or an error if that does not fit in int64.
uint64_t byte_count(const Shape& shape, DType dtype, const std::string& name,
                    const std::string& source) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t count = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t size : shape) {
    if (count > std::numeric_limits<int64_t>::max() / size)
      fail(source, "tensor ", quoted(name), " has shape ", shape_str(shape),
           ": its byte count overflows 64 bits");
    count *= size;
  }
  return static_cast<uint64_t>(count);
}

TensorEntry parse_entry(const std::string& name, const json& entry, uint64_t data_size,
                        const std::string& source) {
  if (!entry.is_object())
    fail(source, "entry ", quoted(name),
         " must be an object with dtype, shape and data_offsets, found ", entry.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail(source, "tensor ", quoted(name), " has no \"", field, "\"");
  TensorEntry t;
  t.name = name;
  t.dtype = parse_dtype(entry, name, source);
  t.shape = parse_shape(entry, name, source);

  const json& offsets = entry.at("data_offsets");
  const int64_t begin =
      offsets.is_array() && offsets.size() == 2 ? non_negative_integer(offsets[0]) : -1;
  const int64_t end =
      offsets.is_array() && offsets.size() == 2 ? non_negative_integer(offsets[1]) : -1;
  if (begin < 0 || end < 0 || begin > end)
    fail(source, "tensor ", quoted(name), " has data_offsets ", offsets.dump(),
         ", expected [begin, end] with 0 <= begin <= end");
  t.begin = static_cast<uint64_t>(begin);
  t.end = static_cast<uint64_t>(end);
  if (t.end > data_size)
    fail(source, "tensor ", quoted(name), " needs bytes [", t.begin, ", ", t.end,
         ") of the data section but the data section holds ", data_size,
         " bytes (truncated file?)");
  const uint64_t expected = byte_count(t.shape, t.dtype, name, source);
  if (t.end - t.begin != expected)
    fail(source, "tensor ", quoted(name), " of dtype ", safetensors_dtype_name(t.dtype),
         " and shape ", shape_str(t.shape), " needs ", expected, " bytes (", shape_numel(t.shape),
         " elements of ", dtype_size(t.dtype), " bytes) but its data_offsets [", t.begin, ", ",
         t.end, "] span ", t.end - t.begin, " bytes");
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& metadata, const std::string& source) {
  if (!metadata.is_object())
    fail(source, "__metadata__ must be an object of strings, found ", metadata.type_name());
  std::map<std::string, std::string> result;
  for (const auto& [key, value] : metadata.items()) {
    if (!value.is_string())
      fail(source, "__metadata__ values must be strings, but ", quoted(key), " holds ",
           value.dump());
    result[key] = value.get<std::string>();
  }
  return result;
}

// Parses and checks the JSON header of a file whose data section is `data_size` bytes.
Header parse_header(const char* text, size_t length, uint64_t data_size,
                    const std::string& source) {
  const json root = parse_json(text, length, source);
  if (!root.is_object()) fail(source, "header must be a JSON object, found ", root.type_name());
  Header header;
  header.data_start = 8 + length;
  for (const auto& [name, entry] : root.items()) {
    if (name == kMetadataKey)
      header.metadata = parse_metadata(entry, source);
    else
      header.tensors.push_back(parse_entry(name, entry, data_size, source));
  }
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const TensorEntry& a, const TensorEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  // Sorted by start, two tensors overlap when one starts before the furthest end so far.
  // Empty tensors hold no bytes and overlap nothing.
  const TensorEntry* furthest = nullptr;
  for (const TensorEntry& t : header.tensors) {
    if (t.begin == t.end) continue;
    if (furthest && t.begin < furthest->end)
      fail(source, "tensors ", quoted(furthest->name), " (bytes [", furthest->begin, ", ",
           furthest->end, ")) and ", quoted(t.name), " (bytes [", t.begin, ", ", t.end,
           ")) overlap");
    if (!furthest || t.end > furthest->end) furthest = &t;
  }
  return header;
}

// ---- reading: files ------------------------------------------------------------------------

// Closes a file descriptor when it goes out of scope.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads up to `count` bytes at `offset`; returns how many were read before the end of the file.
size_t read_at(int fd, void* out, size_t count, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < count) {
    const ssize_t n = ::pread(fd, static_cast<char*>(out) + done, count - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, "cannot read: ", system_error());
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// ---- writing -------------------------------------------------------------------------------

using ByteSink = std::function<void(const void* bytes, size_t count)>;

// Writes a whole safetensors file to `sink`. `context` starts error messages (the path, or the
// function's name).
void write_safetensors(const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::string& context, const ByteSink& sink) {
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey)
      fail(context, "\"", kMetadataKey, "\" is reserved for metadata and cannot name a tensor");
    if (!names.insert(name).second) fail(context, "tensor name ", quoted(name), " is used twice");
    if (!tensor.defined()) fail(context, "tensor ", quoted(name), " is undefined");
  }

  // Widest elements first (stable: the caller's order within one width), back to back, so
  // every tensor starts at a multiple of its element size.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors[a].second.element_size() > tensors[b].second.element_size();
  });

  json header = json::object();
  uint64_t offset = 0;
  for (size_t i : order) {
    const Tensor& t = tensors[i].second;
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[tensors[i].first] = {{"dtype", safetensors_dtype_name(t.dtype())},
                                {"shape", t.shape()},
                                {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(context, "a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  // Spaces, which JSON ignores, so that the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  sink(length, 8);
  sink(text.data(), text.size());

  std::vector<unsigned char> staging;  // host copy of tensors that are not contiguous on the CPU
  for (size_t i : order) {
    const Tensor& t = tensors[i].second;
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (bytes == 0) continue;
    if (t.device().is_cpu() && t.is_contiguous()) {
      sink(t.data_ptr(), bytes);
    } else {
      staging.resize(bytes);
      to_host(t, t.dtype(), staging.data());
      sink(staging.data(), bytes);
    }
  }
}

// A new file beside `target` that replaces it on commit() and is removed otherwise.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& target) : target_(target) {
    if (target.empty() || target.back() == '/') fail(target, "cannot save: the path names no file");
    const size_t slash = target.find_last_of('/');
    directory_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : target.substr(0, slash));
    // A unique name in the same directory (rename only replaces atomically within one file
    // system). O_EXCL never reuses a file someone else made; mode 0666 lets the umask decide
    // the permissions, as for any new file.
    thread_local std::mt19937_64 random_bits{std::random_device{}()};
    for (int attempt = 0; fd_ < 0; ++attempt) {
      path_ = str_cat(target, ".tmp-", ::getpid(), "-", random_bits() % 1'000'000'000);
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt == 100))
        fail(target, "cannot create a temporary file in ", directory_, ": ", system_error());
    }
  }
  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  void write(const void* bytes, size_t count) {
    const char* p = static_cast<const char*>(bytes);
    while (count > 0) {
      const ssize_t n = ::write(fd_, p, count);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(target_, "cannot write the temporary file ", path_, ": ", system_error());
      p += n;
      count -= static_cast<size_t>(n);
    }
  }

  void commit() {
    // write() leaves nothing buffered in this process; fsync moves the kernel's copy to the
    // disk, so the rename below can never expose a file whose bytes are not there yet.
    if (::fsync(fd_) != 0)
      fail(target_, "cannot flush the temporary file ", path_, " to disk: ", system_error());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      fail(target_, "cannot close the temporary file ", path_, ": ", system_error());
    if (::rename(path_.c_str(), target_.c_str()) != 0)
      fail(target_, "cannot rename the temporary file ", path_, " over it: ", system_error());
    committed_ = true;
    // The rename is an entry in the directory, which is only on the disk once the directory
    // itself is synced: without this a power loss could bring back the old file (or none).
    // Some file systems cannot sync directories (EINVAL), and a directory we may write but
    // not read cannot be opened: then the kernel's own writeback is all there is.
    FileDescriptor dir{::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0 && ::fsync(dir.fd) != 0 && errno != EINVAL)
      fail(target_, "saved, but cannot flush its directory ", directory_,
           " to disk: ", system_error());
  }

 private:
  std::string target_;
  std::string directory_;
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

// ---- public --------------------------------------------------------------------------------

const char* safetensors_dtype_name(DType dtype) {
  for (const FormatDType& d : kReadableDTypes)
    if (d.dtype == dtype) return d.name;
  throw Error(str_cat("safetensors: no format name for dtype ", dtype_name(dtype)));
}

bool SafetensorsFile::contains(const std::string& name) const {
  for (const auto& entry : tensors)
    if (entry.first == name) return true;
  return false;
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& entry : tensors)
    if (entry.first == name) return entry.second;
  constexpr size_t kShown = 8;
  std::string shown;
  for (size_t i = 0; i < tensors.size() && i < kShown; ++i)
    shown += (i ? ", " : "") + quoted(tensors[i].first);
  if (tensors.size() > kShown) shown += str_cat(" and ", tensors.size() - kShown, " more");
  fail(source, "no tensor ", quoted(name), " (it holds ",
       tensors.empty() ? std::string("no tensors") : shown, ")");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  for (const auto& entry : tensors) result.push_back(entry.first);
  return result;
}

std::map<std::string, Tensor> to_map(const SafetensorsFile& file) {
  return std::map<std::string, Tensor>(file.tensors.begin(), file.tensors.end());
}

std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  write_safetensors(
      tensors, metadata, "serialize_safetensors",
      [&](const void* data, size_t count) { bytes.append(static_cast<const char*>(data), count); });
  return bytes;
}

SafetensorsFile parse_safetensors(const void* bytes, size_t size, const std::string& source) {
  const auto* data = static_cast<const unsigned char*>(bytes);
  const uint64_t length = header_length(data, size, source);
  const Header header =
      parse_header(reinterpret_cast<const char*>(data) + 8, length, size - 8 - length, source);
  SafetensorsFile file;
  file.source = source;
  file.metadata = header.metadata;
  for (const TensorEntry& t : header.tensors)
    file.tensors.emplace_back(
        t.name, from_host(data + header.data_start + t.begin, t.dtype, t.shape, Device::cpu()));
  return file;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& source) {
  return parse_safetensors(bytes.data(), bytes.size(), source);
}

SafetensorsFile load_safetensors(const std::string& path) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail(path, "cannot open: ", system_error());
  struct stat info;
  if (::fstat(file.fd, &info) != 0) fail(path, "cannot stat: ", system_error());
  if (!S_ISREG(info.st_mode)) fail(path, "not a regular file");
  const uint64_t size = static_cast<uint64_t>(info.st_size);

  unsigned char first8[8] = {};
  read_at(file.fd, first8, std::min<uint64_t>(size, 8), 0, path);
  const uint64_t length = header_length(first8, size, path);
  std::string text(length, '\0');
  if (read_at(file.fd, text.data(), length, 8, path) != length)
    fail(path, "file ended inside the header (was it changed while being read?)");
  const Header header = parse_header(text.data(), length, size - 8 - length, path);

  SafetensorsFile result;
  result.source = path;
  result.metadata = header.metadata;
  for (const TensorEntry& t : header.tensors) {
    Tensor tensor = empty(t.shape, {t.dtype, Device::cpu()});
    const size_t bytes = t.end - t.begin;
    if (bytes &&
        read_at(file.fd, tensor.data_ptr(), bytes, header.data_start + t.begin, path) != bytes)
      fail(path, "file ended inside tensor ", quoted(t.name),
           " (was it changed while being read?)");
    result.tensors.emplace_back(t.name, std::move(tensor));
  }
  return result;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  TemporaryFile file(path);
  write_safetensors(tensors, metadata, path,
                    [&](const void* data, size_t count) { file.write(data, count); });
  file.commit();
}

}  // namespace ember
