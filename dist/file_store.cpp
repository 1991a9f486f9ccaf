// FileStore (see file_store.h): a log of records in one shared file, read and appended under
// flock().
#include "dist/file_store.h"

#include <fcntl.h>     // open
#include <sys/file.h>  // flock
#include <sys/stat.h>  // fstat
#include <unistd.h>    // pread, write, close

#include <algorithm>
#include <cerrno>
#include <cstring>  // strerror
#include <thread>

#include "engine/error.h"  // EMBER_CHECK, str_cat

namespace ember::dist {

namespace {

using Clock = std::chrono::steady_clock;

// Holds flock(fd, LOCK_SH or LOCK_EX) for its lifetime.
class FileLock {
 public:
  FileLock(int fd, int operation, const std::string& path) : fd_(fd) {
    while (flock(fd_, operation) != 0) {
      EMBER_CHECK(errno == EINTR, "file store ", path, ": cannot lock: ", std::strerror(errno));
    }
  }
  ~FileLock() { flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

void put_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(char((value >> (8 * i)) & 0xff));
}

uint32_t get_u32(const uint8_t* bytes) {
  return uint32_t(bytes[0]) | uint32_t(bytes[1]) << 8 | uint32_t(bytes[2]) << 16 |
         uint32_t(bytes[3]) << 24;
}

std::string quoted_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& key : keys) out += (out.empty() ? "'" : ", '") + key + "'";
  return out;
}

}  // namespace

FileStore::FileStore(std::string path, Milliseconds timeout) : path_(std::move(path)) {
  EMBER_CHECK(!path_.empty(), "file store: no path given");
  timeout_ = timeout;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  EMBER_CHECK(fd_ >= 0, "file store ", path_, ": cannot open: ", std::strerror(errno),
              " (the folder must exist and be writable by every rank)");
}

FileStore::~FileStore() {
  if (fd_ >= 0) ::close(fd_);
}

void FileStore::read_new_records() {
  struct stat info;
  EMBER_CHECK(fstat(fd_, &info) == 0, "file store ", path_, ": ", std::strerror(errno));
  const int64_t size = info.st_size;
  if (size <= read_offset_) return;
  std::vector<uint8_t> data(size_t(size - read_offset_));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = pread(fd_, data.data() + done, data.size() - done, read_offset_ + done);
    if (n < 0 && errno == EINTR) continue;
    EMBER_CHECK(n > 0, "file store ", path_,
                ": cannot read: ", n == 0 ? "the file shrank" : std::strerror(errno));
    done += size_t(n);
  }
  size_t at = 0;
  while (at < data.size()) {
    const int64_t record_offset = read_offset_ + int64_t(at);
    EMBER_CHECK(data.size() - at >= 8, "file store ", path_, ": truncated record at byte ",
                record_offset, " (a rank died while writing? use a fresh file)");
    const uint32_t key_size = get_u32(&data[at]);
    const uint32_t value_size = get_u32(&data[at + 4]);
    EMBER_CHECK(data.size() - at - 8 >= uint64_t(key_size) + value_size, "file store ", path_,
                ": truncated record at byte ", record_offset,
                " (a rank died while writing, or not a store file? use a fresh file)");
    const char* key = reinterpret_cast<const char*>(&data[at + 8]);
    const uint8_t* value = &data[at + 8 + key_size];
    values_[std::string(key, key_size)] = Bytes(value, value + value_size);
    at += 8 + size_t(key_size) + value_size;
  }
  read_offset_ = size;
}

void FileStore::append_record(const std::string& key, const Bytes& value) {
  EMBER_CHECK(key.size() <= UINT32_MAX && value.size() <= UINT32_MAX, "file store ", path_,
              ": the value of '", key, "' is too large (", value.size(), " bytes)");
  std::string record;
  record.reserve(8 + key.size() + value.size());
  put_u32(record, uint32_t(key.size()));
  put_u32(record, uint32_t(value.size()));
  record += key;
  record.append(value.begin(), value.end());
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    EMBER_CHECK(n > 0, "file store ", path_, ": cannot write: ", std::strerror(errno));
    done += size_t(n);
  }
}

bool FileStore::has_all(const std::vector<std::string>& keys) const {
  for (const auto& key : keys)
    if (!values_.count(key)) return false;
  return true;
}

void FileStore::set(const std::string& key, const Bytes& value) {
  std::lock_guard<std::mutex> guard(mutex_);
  FileLock lock(fd_, LOCK_EX, path_);
  append_record(key, value);
}

Bytes FileStore::get(const std::string& key) {
  wait({key}, timeout_);
  std::lock_guard<std::mutex> guard(mutex_);
  return values_.at(key);
}

int64_t FileStore::add(const std::string& key, int64_t delta) {
  std::lock_guard<std::mutex> guard(mutex_);
  FileLock lock(fd_, LOCK_EX, path_);
  read_new_records();
  auto it = values_.find(key);
  int64_t value = it == values_.end() ? 0 : parse_counter(key, it->second);
  EMBER_CHECK(!__builtin_add_overflow(value, delta, &value), "file store ", path_, ": add to '",
              key, "' would overflow");
  append_record(key, to_bytes(std::to_string(value)));
  return value;
}

bool FileStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> guard(mutex_);
  FileLock lock(fd_, LOCK_SH, path_);
  read_new_records();
  return has_all(keys);
}

void FileStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      FileLock lock(fd_, LOCK_SH, path_);
      read_new_records();
      if (has_all(keys)) return;
      if (Clock::now() >= deadline) {
        std::vector<std::string> missing;
        for (const auto& key : keys)
          if (!values_.count(key)) missing.push_back(key);
        throw TimeoutError(str_cat("file store ", path_, ": timed out after ", timeout.count(),
                                   " ms waiting for ", quoted_keys(missing)));
      }
    }
    // Polling: quick at first (a barrier's keys come close together), then gentler.
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - Clock::now()));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace ember::dist
