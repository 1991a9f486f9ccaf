// The key-value store processes meet through (the rendezvous), as in torch.distributed:
// rank 0 hosts it, every process sets and reads keys, and what one process sets, the others can
// wait for. Gloo finds its peers' addresses through it, NCCL's unique id travels through it,
// and the launcher's barrier and failure notices are keys in it.
//
//   store.set("nccl_id", bytes);               // rank 0
//   Bytes id = store.get("nccl_id");           // every rank: waits until the key exists
//   int64_t n = store.add("arrived", 1);       // an atomic counter (a barrier's building block)
//   store.wait({"a", "b"}, 10s);               // until both keys exist, or an error
//
// Every call that waits has a timeout (the store's, or one given) and throws ember::Error naming
// the keys that did not come; nothing waits forever.
//
// Implementations: MemoryStore (ranks as threads of one process, for tests), PrefixStore (a
// namespace inside another store: one per sub-group), TcpStore (dist/tcp_store.h, ZeroMQ, rank 0
// hosts it) and FileStore (dist/file_store.h, a file on a shared file system).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/error.h"  // Error

namespace ember::dist {

// Something distributed did not happen in time: a key, a peer, a collective. The message names
// what was waited for (the keys, the rank).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

using Bytes = std::vector<uint8_t>;
using Milliseconds = std::chrono::milliseconds;

// Bytes of a string and back (keys and values are often text).
Bytes to_bytes(const std::string& text);
std::string to_string(const Bytes& bytes);

class Store {
 public:
  virtual ~Store() = default;

  // Sets `key` to `value` (replacing an older value) and wakes whoever waits for it.
  virtual void set(const std::string& key, const Bytes& value) = 0;
  // The value of `key`, waiting up to timeout() for it to be set.
  virtual Bytes get(const std::string& key) = 0;
  // Adds `delta` to the integer stored at `key` (absent: 0) and returns the new value, atomically.
  virtual int64_t add(const std::string& key, int64_t delta) = 0;
  // Whether every key exists now (no waiting).
  virtual bool check(const std::vector<std::string>& keys) = 0;
  // Waits until every key exists; throws ember::Error naming the missing keys after `timeout`.
  virtual void wait(const std::vector<std::string>& keys, Milliseconds timeout) = 0;
  void wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

  Milliseconds timeout() const { return timeout_; }
  void set_timeout(Milliseconds timeout) { timeout_ = timeout; }

 protected:
  Milliseconds timeout_{std::chrono::seconds(300)};
};

// A store in this process's memory: the rendezvous of ranks that are threads (tests).
class MemoryStore : public Store {
 public:
  void set(const std::string& key, const Bytes& value) override;
  Bytes get(const std::string& key) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  using Store::wait;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Bytes> values_;
};

// Every key of `base` prefixed with "<prefix>/": the same store, a separate namespace (each
// sub-group and each use of a store gets its own, so their keys never collide).
class PrefixStore : public Store {
 public:
  PrefixStore(std::string prefix, std::shared_ptr<Store> base);
  void set(const std::string& key, const Bytes& value) override;
  Bytes get(const std::string& key) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  using Store::wait;

 private:
  std::string full(const std::string& key) const { return prefix_ + "/" + key; }
  std::vector<std::string> full(const std::vector<std::string>& keys) const;
  std::string prefix_;
  std::shared_ptr<Store> base_;
};

// Decodes the integer text that add() keeps (so get() of a counter works too); an error names
// the key when the value is not an integer.
int64_t parse_counter(const std::string& key, const Bytes& value);

}  // namespace ember::dist
