// FileStore: the rendezvous store in one file on a file system every rank sees (file://PATH:
// NFS, Lustre, or /tmp for ranks on one machine).
//
// The file is a log of records, each appended whole under an exclusive flock():
//
//   [key length: u32 little-endian] [value length: u32 little-endian] [key bytes] [value bytes]
//
// The value of a key is its latest record. Every store keeps the values it has read so far and
// the offset it read up to, and reads only what was appended since (under a shared flock, so it
// never sees half a record). add() reads to the end and appends under the same exclusive lock,
// so it is atomic across processes. get() and wait() poll the file until the keys appear or
// the timeout passes.
//
// The file is not removed: give each run a fresh PATH (an old file's keys would be seen as the
// new run's).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "dist/store.h"  // Store, Bytes, Milliseconds, TimeoutError

namespace ember::dist {

class FileStore : public Store {
 public:
  explicit FileStore(std::string path, Milliseconds timeout = std::chrono::seconds(300));
  ~FileStore() override;
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  void set(const std::string& key, const Bytes& value) override;
  Bytes get(const std::string& key) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  using Store::wait;

  const std::string& path() const { return path_; }

 private:
  // Reads the records appended since the last call into values_ (the caller holds a flock).
  void read_new_records();
  void append_record(const std::string& key, const Bytes& value);
  bool has_all(const std::vector<std::string>& keys) const;

  std::string path_;
  int fd_ = -1;
  // flock() does not exclude threads sharing one descriptor: this mutex does.
  std::mutex mutex_;
  std::map<std::string, Bytes> values_;
  int64_t read_offset_ = 0;
};

}  // namespace ember::dist
