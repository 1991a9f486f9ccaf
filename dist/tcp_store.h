// TcpStore: the rendezvous store over TCP, on ZeroMQ. Rank 0 hosts the server (a ROUTER socket
// on a background thread of its process); every rank, rank 0 included, talks to it as a client.
//
//   TcpStoreOptions options;
//   options.is_server = rank == 0;
//   options.token = getenv("EMBER_DIST_TOKEN");        // optional: the job's shared secret
//   TcpStore store("10.0.0.1", 29500, options);
//   store.set("nccl_id", id);  Bytes id = store.get("nccl_id");
//
// The wire format. A client is a DEALER socket; every request is one multipart message
//
//   [token] [request id] [op] [arguments...]
//
//     op       arguments                 answer (payload frames after the status)
//     "set"    key, value                "ok"
//     "get"    timeout ms, key           "ok", value              (waits for the key)
//     "add"    key, delta (decimal)      "ok", new value (decimal)
//     "check"  key...                    "ok", "1" or "0"
//     "wait"   timeout ms, key...        "ok"                     (waits for every key)
//
// and every answer is [request id] [status] [payload...], with the status "ok", "pending" (an
// interim answer to get/wait: the server is there, the keys are not yet), "timeout" (then the
// payload names the missing keys) or "error" (then the payload is the message, e.g. add on a
// value that is not an integer). The request id (decimal text) lets a client drop an answer
// to an earlier request that it stopped waiting for. The ROUTER adds the peer's routing id in
// front of each message; the server sends the answer back to it.
//
// The server never trusts what arrives: a request without the right token, with the wrong
// number of frames, an unknown op, a non-integer delta or timeout, or a key longer than
// kMaxKeyBytes is dropped silently and the server goes on; a message larger than
// max_message_bytes makes ZeroMQ drop the connection (ZMQ_MAXMSGSIZE); bytes that are not
// ZeroMQ at all end in a failed handshake. A waiting get/wait is parked on the server and
// answered when its keys arrive (or with "timeout" at its deadline), so no polling goes over
// the wire.
//
// A client bounds every call by a deadline (the store's timeout, or the one given to wait) and
// throws TimeoutError naming the keys and tcp://HOST:PORT. A client that starts before the
// server keeps trying (ZeroMQ reconnects by itself); if nothing ever answered, the error says
// that no store answered at tcp://HOST:PORT.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dist/store.h"  // Store, Bytes, Milliseconds, TimeoutError

namespace ember::dist {

struct TcpStoreOptions {
  // This process hosts the server (rank 0). It listens on every interface at the port given
  // (0: a free port, see TcpStore::port()) and connects to itself like every other rank.
  bool is_server = false;
  // Carried by every request; a server with a token drops requests without the same one.
  std::string token;
  // Bounds every call that has no timeout of its own (set, get, add, check).
  Milliseconds timeout{std::chrono::seconds(300)};
  // The largest message the server accepts (the key, the value and the other frames).
  int64_t max_message_bytes = int64_t(64) << 20;
};

class TcpStore : public Store {
 public:
  static constexpr size_t kMaxKeyBytes = 4096;

  TcpStore(std::string host, int port, TcpStoreOptions options = {});
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const Bytes& value) override;
  Bytes get(const std::string& key) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  using Store::wait;

  int port() const { return port_; }  // the port the server listens on
  std::string address() const;        // "tcp://HOST:PORT"
  const std::string& host() const { return host_; }

 private:
  class Server;
  class Client;

  std::string host_;
  int port_;
  std::unique_ptr<Server> server_;  // only on the process that hosts the store
  std::unique_ptr<Client> client_;
};

}  // namespace ember::dist
