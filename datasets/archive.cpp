#include "datasets/archive.h"

#include <fcntl.h>     // open
#include <sys/stat.h>  // fchmod
#include <unistd.h>    // write, fsync, close
#include <zlib.h>      // inflate, deflate

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace ember::data {

namespace fs = std::filesystem;

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(str_cat(path, ": no such file"));
  if (fs::is_directory(status)) throw Error(str_cat(path, ": is a folder, not a file"));
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw Error(str_cat(path, ": cannot open (", std::strerror(errno), ")"));
  std::vector<uint8_t> bytes;
  // Read in blocks until the end rather than trusting the size: a file may grow or shrink
  // while it is read, and /dev/stdin-like files have none.
  constexpr size_t kBlock = 1 << 20;
  const uintmax_t expected = fs::file_size(path, ec);
  if (!ec) bytes.reserve(static_cast<size_t>(expected) + kBlock);
  size_t used = 0;
  while (true) {
    bytes.resize(used + kBlock);
    const size_t got = std::fread(bytes.data() + used, 1, kBlock, file);
    used += got;
    if (got < kBlock) break;
  }
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) throw Error(str_cat(path, ": read error after ", used, " bytes"));
  bytes.resize(used);
  return bytes;
}

void write_file_atomically(const std::string& path, const void* data, size_t size) {
  std::string temporary = path + ".partial-XXXXXX";
  const int fd = mkstemp(temporary.data());
  if (fd < 0) throw Error(str_cat(path, ": cannot create (", std::strerror(errno), ")"));
  const auto fail = [&](const char* what) {
    const int saved = errno;
    close(fd);
    std::remove(temporary.c_str());
    throw Error(str_cat(path, ": ", what, " (", std::strerror(saved), ")"));
  };
  fchmod(fd, 0644);  // mkstemp makes the file private; data files are for everyone to read
  const auto* bytes = static_cast<const uint8_t*>(data);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, bytes + written, std::min<size_t>(size - written, 1 << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write");
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) fail("cannot write");
  if (close(fd) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    throw Error(str_cat(path, ": cannot write (", std::strerror(saved), ")"));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    throw Error(
        str_cat(path, ": cannot rename the written file into place (", std::strerror(saved), ")"));
  }
}

bool is_gzip(const uint8_t* data, size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

namespace {
// zlib counts in 32-bit unsigned ints; larger buffers go through in pieces.
uInt clamp_to_uint(size_t n) {
  return static_cast<uInt>(std::min<size_t>(n, UINT_MAX));
}
}  // namespace

std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name) {
  EMBER_CHECK(is_gzip(data, size), name, ": not gzip data (it does not start with 1f 8b)");
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (whose CRC-32 and length zlib checks).
  EMBER_CHECK(inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK, name, ": zlib could not start");
  std::vector<uint8_t> out;
  // The last 4 bytes hold the unpacked size modulo 2^32: a good first guess for one member.
  if (size >= 18) {
    const uint32_t hint = data[size - 4] | data[size - 3] << 8 | data[size - 2] << 16 |
                          static_cast<uint32_t>(data[size - 1]) << 24;
    // deflate packs at most about 1032:1, so a larger hint is not a size this stream can have
    if (hint <= size * 1032.0) out.reserve(hint);
  }
  out.resize(std::max<size_t>(out.capacity(), 1 << 16));
  size_t in_pos = 0, out_pos = 0;
  const auto fail = [&](const std::string& message) {
    inflateEnd(&stream);
    throw Error(str_cat(name, ": ", message));
  };
  while (true) {
    if (out_pos == out.size()) out.resize(out.size() * 2);
    const uInt in_offered = clamp_to_uint(size - in_pos);
    const uInt out_offered = clamp_to_uint(out.size() - out_pos);
    stream.next_in = const_cast<Bytef*>(data + in_pos);
    stream.avail_in = in_offered;
    stream.next_out = out.data() + out_pos;
    stream.avail_out = out_offered;
    const int rc = inflate(&stream, Z_NO_FLUSH);
    in_pos += in_offered - stream.avail_in;
    out_pos += out_offered - stream.avail_out;
    if (rc == Z_STREAM_END) {
      if (in_pos == size) break;
      if (is_gzip(data + in_pos, size - in_pos)) {  // another member follows
        inflateReset(&stream);
        continue;
      }
      // Some tools pad a gzip file with zeros (tape blocks); anything else is not gzip data.
      if (std::all_of(data + in_pos, data + size, [](uint8_t b) { return b == 0; })) break;
      fail(str_cat("unexpected bytes after the gzip data, at offset ", in_pos, " of ", size));
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      fail(str_cat("corrupt gzip data near compressed byte ", in_pos, " (",
                   stream.msg ? stream.msg : "zlib error", ")"));
    }
    // All input used, room left for output, and still no end of stream: the file was cut.
    if (in_pos == size && stream.avail_out > 0) {
      fail(str_cat("truncated gzip data: the stream stops after ", size,
                   " compressed bytes without its end (", out_pos, " bytes unpacked so far)"));
    }
  }
  inflateEnd(&stream);
  out.resize(out_pos);
  out.shrink_to_fit();
  return out;
}

std::vector<uint8_t> read_file_maybe_gzipped(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  if (is_gzip(bytes)) return gunzip(bytes, path);
  return bytes;
}

std::vector<uint8_t> gzip(const uint8_t* data, size_t size, int level) {
  z_stream stream{};
  EMBER_CHECK(
      deflateInit2(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK,
      "gzip: zlib could not start (level ", level, ")");
  std::vector<uint8_t> out(1 << 16);
  size_t in_pos = 0, out_pos = 0;
  while (true) {
    if (out_pos == out.size()) out.resize(out.size() * 2);
    const uInt in_offered = clamp_to_uint(size - in_pos);
    const uInt out_offered = clamp_to_uint(out.size() - out_pos);
    stream.next_in = const_cast<Bytef*>(data + in_pos);
    stream.avail_in = in_offered;
    stream.next_out = out.data() + out_pos;
    stream.avail_out = out_offered;
    const bool last = in_pos + in_offered == size;
    const int rc = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH);
    in_pos += in_offered - stream.avail_in;
    out_pos += out_offered - stream.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      deflateEnd(&stream);
      throw Error(str_cat("gzip: zlib failed (", rc, ")"));
    }
  }
  deflateEnd(&stream);
  out.resize(out_pos);
  return out;
}

// ---- tar ------------------------------------------------------------------------------------
//
// A header block (512 bytes; the offsets below) precedes each entry's content, which is padded
// to a multiple of 512 bytes:
//   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]  136 mtime[12]
//   148 checksum[8]  156 type  157 linkname[100]  257 magic[6] "ustar\0" (POSIX) or
//   "ustar " (GNU)  263 version[2]  ...  345 prefix[155] (POSIX only: the name's folder part)
// Numbers are octal text; GNU tar writes sizes of 8 GiB and more in base 256 instead (first
// byte's top bit set). The checksum is the sum of the header's bytes with the checksum field
// counted as eight spaces.

namespace {

constexpr size_t kBlock = 512;

std::string text_field(const uint8_t* field, size_t length) {
  const auto* text = reinterpret_cast<const char*>(field);
  return std::string(text, strnlen(text, length));
}

// An octal (or GNU base-256) number field; false when it holds anything else.
bool number_field(const uint8_t* field, size_t length, uint64_t& value) {
  value = 0;
  if (field[0] & 0x80) {  // base 256, big-endian, the top bit of the first byte is the marker
    if (field[0] & 0x40) return false;  // negative
    for (size_t i = 0; i < length; ++i) {
      const uint8_t byte = i == 0 ? field[0] & 0x7f : field[i];
      if (value > (UINT64_MAX >> 8)) return false;
      value = value << 8 | byte;
    }
    return true;
  }
  size_t i = 0;
  while (i < length && field[i] == ' ') ++i;
  bool any = false;
  for (; i < length && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (value > (UINT64_MAX >> 3)) return false;
    value = value << 3 | (field[i] - '0');
    any = true;
  }
  for (; i < length; ++i) {  // the number ends with spaces or NULs
    if (field[i] != ' ' && field[i] != 0) return false;
  }
  return any;
}

std::string without_dot_slash(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  return name;
}

// The "path" value of a pax extended header: records "LENGTH key=value\n".
std::string pax_path(const uint8_t* data, size_t size) {
  std::string path;
  size_t pos = 0;
  while (pos < size) {
    size_t length = 0, i = pos;
    while (i < size && data[i] >= '0' && data[i] <= '9') length = length * 10 + (data[i++] - '0');
    if (length == 0 || length > size - pos || i >= size || data[i] != ' ') break;
    const std::string record(reinterpret_cast<const char*>(data) + i + 1, pos + length - i - 1);
    if (record.rfind("path=", 0) == 0 && !record.empty() && record.back() == '\n')
      path = record.substr(5, record.size() - 6);
    pos += length;
  }
  return path;
}

bool all_zero(const uint8_t* data, size_t size) {
  return std::all_of(data, data + size, [](uint8_t b) { return b == 0; });
}

}  // namespace

TarArchive TarArchive::open(const std::string& path) {
  return from_bytes(read_file_maybe_gzipped(path), path);
}

TarArchive TarArchive::from_bytes(std::vector<uint8_t> bytes, const std::string& name) {
  TarArchive archive;
  archive.name_ = name;
  archive.bytes_ = std::move(bytes);
  const std::vector<uint8_t>& all = archive.bytes_;
  std::string next_name;  // from a GNU 'L' or pax 'x' entry: the name of the entry after it
  size_t pos = 0;
  while (pos < all.size()) {
    const uint8_t* header = all.data() + pos;
    if (all.size() - pos < kBlock) {
      if (all_zero(header, all.size() - pos)) break;
      throw Error(str_cat(name, ": truncated: the tar header at offset ", pos, " needs ", kBlock,
                          " bytes, only ", all.size() - pos, " remain"));
    }
    if (all_zero(header, kBlock)) break;  // the end-of-archive marker

    const std::string stored_name = text_field(header, 100);
    const bool posix_ustar = std::memcmp(header + 257, "ustar\0", 6) == 0;
    const std::string prefix = posix_ustar ? text_field(header + 345, 155) : "";
    std::string member_name = prefix.empty() ? stored_name : prefix + "/" + stored_name;
    if (!next_name.empty()) member_name = next_name;
    member_name = without_dot_slash(member_name);
    const auto where = [&] {
      return str_cat(name, ": member '", member_name, "' (tar header at offset ", pos, ")");
    };

    uint64_t stored_checksum = 0;
    const bool has_checksum = number_field(header + 148, 8, stored_checksum);
    uint64_t unsigned_sum = 0;
    int64_t signed_sum = 0;  // some old tars summed signed chars
    for (size_t i = 0; i < kBlock; ++i) {
      const uint8_t byte = i >= 148 && i < 156 ? ' ' : header[i];
      unsigned_sum += byte;
      signed_sum += static_cast<int8_t>(byte);
    }
    const bool checksum_ok = has_checksum && (stored_checksum == unsigned_sum ||
                                              static_cast<int64_t>(stored_checksum) == signed_sum);
    if (!checksum_ok && pos == 0) {
      throw Error(str_cat(name, ": not a tar archive (it does not start with a tar header)"));
    }
    if (!has_checksum)
      throw Error(str_cat(where(), ": not a tar header (its checksum field is not a number)"));
    if (!checksum_ok) {
      throw Error(str_cat(where(), ": bad header checksum (stored ", stored_checksum, ", computed ",
                          unsigned_sum, ")"));
    }
    uint64_t size = 0;
    if (!number_field(header + 124, 12, size)) throw Error(str_cat(where(), ": bad size field"));
    const size_t content = pos + kBlock;
    if (size > all.size() - content) {
      throw Error(str_cat(where(), ": truncated: expected ", size, " bytes of content, got ",
                          all.size() - content));
    }

    const char type = static_cast<char>(header[156]);
    if (type == 'L') {
      next_name = text_field(all.data() + content, size);
    } else if (type == 'x') {
      next_name = pax_path(all.data() + content, size);
    } else {
      if (type == '0' || type == '\0' || type == '7') {  // regular (7: contiguous) files
        archive.members_.push_back({member_name, content, static_cast<size_t>(size)});
      }
      // Folders ('5'), links ('1', '2'), devices and fifos, pax globals ('g') hold no file.
      next_name.clear();
    }
    const size_t padded = (size + kBlock - 1) / kBlock * kBlock;
    pos = content + std::min<size_t>(padded, all.size() - content);
  }
  return archive;
}

const TarArchive::Member* TarArchive::find(const std::string& member_name) const {
  const std::string wanted = without_dot_slash(member_name);
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
    if (it->name == wanted) return &*it;
  }
  return nullptr;
}

std::vector<uint8_t> TarArchive::read(const std::string& member_name) const {
  const Member* member = find(member_name);
  EMBER_CHECK(member != nullptr, name_, ": no member named '", member_name, "'");
  return read(*member);
}

std::vector<uint8_t> TarArchive::read(const Member& member) const {
  return std::vector<uint8_t>(bytes_.begin() + member.offset,
                              bytes_.begin() + member.offset + member.size);
}

}  // namespace ember::data
