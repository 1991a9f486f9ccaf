// Files as bytes: reading a whole file, writing one atomically, gzip in both directions (zlib),
// and reading tar archives (.tar, .tar.gz, .tgz) member by member.
//
// The data sets ember reads are small enough to hold in memory whole (CIFAR-10's python archive
// is 163 MB unpacked), so everything here works on byte buffers: simpler than streams, and
// every length can be checked against what is really there before it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ember::data {

// The whole content of `path`. A missing file is "<path>: no such file"; a folder or an
// unreadable file is an error naming it too.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Writes `size` bytes to `path` through a temporary file in the same folder and a rename, so
// that a reader never sees half a file and an interrupted write leaves the old one intact.
void write_file_atomically(const std::string& path, const void* data, size_t size);
inline void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomically(path, bytes.data(), bytes.size());
}

// True when the bytes start with gzip's magic number (1f 8b): formats are recognised by their
// content, never by a file name.
bool is_gzip(const uint8_t* data, size_t size);
inline bool is_gzip(const std::vector<uint8_t>& bytes) {
  return is_gzip(bytes.data(), bytes.size());
}

// The uncompressed content of a gzip stream. Several members one after the other (what `cat
// a.gz b.gz` gives) decompress to their contents joined. A corrupt or truncated stream is an
// error naming `name` (the file it came from).
std::vector<uint8_t> gunzip(const uint8_t* data, size_t size, const std::string& name);
inline std::vector<uint8_t> gunzip(const std::vector<uint8_t>& bytes, const std::string& name) {
  return gunzip(bytes.data(), bytes.size(), name);
}

// The content of `path`, decompressed when it is gzipped (by its magic number).
std::vector<uint8_t> read_file_maybe_gzipped(const std::string& path);

// One gzip member holding `size` bytes, at zlib's compression `level` (1 fast .. 9 small).
std::vector<uint8_t> gzip(const uint8_t* data, size_t size, int level = 6);
inline std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes, int level = 6) {
  return gzip(bytes.data(), bytes.size(), level);
}

// A tar archive held in memory: the POSIX ustar format and GNU tar's (512-byte headers with
// octal fields, 512-byte-aligned contents, two zero blocks at the end). Only regular files are
// members; folders, links and devices are skipped. Long names come from the ustar prefix field,
// GNU 'L' entries or pax 'path' records.
class TarArchive {
 public:
  struct Member {
    std::string name;  // as stored, without a leading "./"
    size_t offset;     // of the content within the archive
    size_t size;
  };

  // Reads `path`, a .tar or a gzipped .tar (recognised by content). A truncated archive or a
  // header whose checksum is wrong is an error naming the archive and the member.
  static TarArchive open(const std::string& path);
  // The same from bytes already in memory; `name` is used in messages.
  static TarArchive from_bytes(std::vector<uint8_t> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  const std::vector<Member>& members() const { return members_; }
  // The member called `name` (the last one if the archive holds several), or nullptr.
  const Member* find(const std::string& member_name) const;
  // The content of member `name`; a missing member is an error naming archive and member.
  std::vector<uint8_t> read(const std::string& member_name) const;
  std::vector<uint8_t> read(const Member& member) const;

 private:
  std::string name_;
  std::vector<uint8_t> bytes_;  // the uncompressed archive
  std::vector<Member> members_;
};

}  // namespace ember::data
