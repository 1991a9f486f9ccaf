// TcpStore (see tcp_store.h for the wire format): the server's loop with its parked waiters, and
// the client's request/answer exchange.
#include "dist/tcp_store.h"

#include <charconv>
#include <chrono>
#include <list>
#include <map>
#include <zmq.hpp>        // ZeroMQ's C++ binding
#include <zmq_addon.hpp>  // recv_multipart, send_multipart

#include "engine/error.h"  // EMBER_CHECK, str_cat

namespace ember::dist {

namespace {

using Clock = std::chrono::steady_clock;

std::string frame_text(const zmq::message_t& frame) {
  return std::string(static_cast<const char*>(frame.data()), frame.size());
}

// A decimal integer filling the whole text, or false.
bool parse_integer(const std::string& text, int64_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::string quoted_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& key : keys) out += (out.empty() ? "'" : ", '") + key.substr(0, 200) + "'";
  return out;
}

// Waits are bounded on the server too (a client that asks for a year gets a day).
constexpr int64_t kLongestServerWaitMs = 24 * 3600 * 1000;
// A request id is decimal text; anything longer is not one of ours.
constexpr size_t kMaxRequestIdBytes = 24;
constexpr std::chrono::milliseconds kServerTimeoutGrace(500);
// Parked get/wait requests beyond this many are refused (a runaway client cannot exhaust memory).
constexpr size_t kMostWaiters = 100000;

}  // namespace

// ---------------------------------------------------------------------------------------------
// The server: one thread owns the ROUTER socket and the key-value map, so nothing is locked.

class TcpStore::Server {
 public:
  Server(int port, std::string token, int64_t max_message_bytes)
      : socket_(context_, zmq::socket_type::router), token_(std::move(token)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, max_message_bytes);
    // A peer that stops reading must not stall the server: answers beyond the queue are dropped.
    socket_.set(zmq::sockopt::router_mandatory, 0);
    const std::string endpoint =
        str_cat("tcp://*:", port == 0 ? std::string("*") : std::to_string(port));
    try {
      socket_.bind(endpoint);
    } catch (const zmq::error_t& e) {
      throw Error(
          str_cat("store: cannot listen on port ", port, ": ", e.what(),
                  port != 0 ? " (another job on this port? choose another --master-port)" : ""));
    }
    const std::string bound = socket_.get(zmq::sockopt::last_endpoint);  // tcp://0.0.0.0:PORT
    port_ = std::stoi(bound.substr(bound.rfind(':') + 1));
    thread_ = std::thread([this] { run(); });
  }

  ~Server() {
    // Makes the blocked poll of the server thread fail with ETERM: it closes its socket and ends.
    context_.shutdown();
    thread_.join();
  }

  int port() const { return port_; }

 private:
  struct Waiter {
    std::string peer, request_id;
    bool is_get;  // get answers with the value; wait with "ok" alone
    std::vector<std::string> keys;
    Clock::time_point deadline;
  };

  void run() {
    while (true) {
      try {
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, next_timeout());
        // Read everything queued before looking at the clock again.
        while (item.revents & ZMQ_POLLIN) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait))
            break;
          try {
            handle(frames);
          } catch (const zmq::error_t&) {
            throw;
          } catch (const std::exception&) {
            // a request that could not be served (out of memory, say): dropped
          }
        }
        expire_waiters();
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;  // the store is being destroyed
        // EINTR (a signal) and the like: go on serving
      }
    }
    socket_.close();
  }

  std::chrono::milliseconds next_timeout() const {
    auto timeout = std::chrono::milliseconds(1000);
    const auto now = Clock::now();
    for (const auto& waiter : waiters_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(waiter.deadline - now) +
          std::chrono::milliseconds(1);
      timeout = std::max(std::chrono::milliseconds(0), std::min(timeout, left));
    }
    return timeout;
  }

  void handle(std::vector<zmq::message_t>& frames) {
    // [peer] [token] [request id] [op] [arguments...]
    if (frames.size() < 4) return;
    if (frame_text(frames[1]) != token_) return;
    const std::string peer = frame_text(frames[0]);
    const std::string request_id = frame_text(frames[2]);
    if (request_id.empty() || request_id.size() > kMaxRequestIdBytes) return;
    const std::string op = frame_text(frames[3]);
    const size_t arguments = frames.size() - 4;
    auto argument = [&](size_t i) { return frame_text(frames[4 + i]); };
    for (size_t i = 4; i < frames.size(); ++i)
      if (op != "set" || i == 4)  // every argument but set's value is a key or a short number
        if (frames[i].size() > kMaxKeyBytes) return;

    if (op == "set" && arguments == 2) {
      const auto* data = static_cast<const uint8_t*>(frames[5].data());
      values_[argument(0)] = Bytes(data, data + frames[5].size());
      answer(peer, request_id, "ok", {});
      wake_waiters();
    } else if (op == "add" && arguments == 2) {
      int64_t delta = 0;
      if (!parse_integer(argument(1), delta)) return;
      const std::string key = argument(0);
      int64_t value = 0;
      auto it = values_.find(key);
      if (it != values_.end()) {
        const std::string text = to_string(it->second);
        if (!parse_integer(text, value)) {
          answer(peer, request_id, "error",
                 {str_cat("add: key '", key, "' holds '", text.substr(0, 40),
                          "', not an integer counter")});
          return;
        }
      }
      if (__builtin_add_overflow(value, delta, &value)) {
        answer(peer, request_id, "error", {str_cat("add: key '", key, "' would overflow")});
        return;
      }
      values_[key] = to_bytes(std::to_string(value));
      answer(peer, request_id, "ok", {std::to_string(value)});
      wake_waiters();
    } else if (op == "check" && arguments >= 1) {
      bool all = true;
      for (size_t i = 0; i < arguments; ++i) all = all && values_.count(argument(i)) > 0;
      answer(peer, request_id, "ok", {all ? "1" : "0"});
    } else if ((op == "get" && arguments == 2) || (op == "wait" && arguments >= 2)) {
      int64_t timeout_ms = 0;
      if (!parse_integer(argument(0), timeout_ms) || timeout_ms < 0) return;
      Waiter waiter{peer, request_id, op == "get", {}, {}};
      for (size_t i = 1; i < arguments; ++i) waiter.keys.push_back(argument(i));
      waiter.deadline =
          Clock::now() + std::chrono::milliseconds(std::min(timeout_ms, kLongestServerWaitMs));
      if (!try_answer(waiter)) {
        if (waiters_.size() >= kMostWaiters) {
          answer(peer, request_id, "error", {"the server holds too many waiting requests"});
          return;
        }
        answer(peer, request_id, "pending", {});
        waiters_.push_back(std::move(waiter));
      }
    }
    // anything else: an unknown op or the wrong number of arguments, dropped
  }

  // Answers `waiter` if all its keys exist.
  bool try_answer(const Waiter& waiter) {
    for (const auto& key : waiter.keys)
      if (!values_.count(key)) return false;
    if (waiter.is_get) {
      const Bytes& value = values_.at(waiter.keys[0]);
      answer(waiter.peer, waiter.request_id, "ok", {std::string(value.begin(), value.end())});
    } else {
      answer(waiter.peer, waiter.request_id, "ok", {});
    }
    return true;
  }

  void wake_waiters() {
    for (auto it = waiters_.begin(); it != waiters_.end();)
      it = try_answer(*it) ? waiters_.erase(it) : std::next(it);
  }

  void expire_waiters() {
    const auto now = Clock::now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline > now) {
        ++it;
        continue;
      }
      std::vector<std::string> missing;
      for (const auto& key : it->keys)
        if (!values_.count(key)) missing.push_back(key);
      answer(it->peer, it->request_id, "timeout", missing);
      it = waiters_.erase(it);
    }
  }

  void answer(const std::string& peer, const std::string& request_id, const std::string& status,
              const std::vector<std::string>& payload) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(peer.data(), peer.size());
    frames.emplace_back(request_id.data(), request_id.size());
    frames.emplace_back(status.data(), status.size());
    for (const auto& part : payload) frames.emplace_back(part.data(), part.size());
    // Never blocks: a peer that is gone or whose queue is full loses the answer.
    (void)zmq::send_multipart(socket_, frames, zmq::send_flags::dontwait);
  }

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string token_;
  int port_ = 0;
  std::thread thread_;
  std::map<std::string, Bytes> values_;
  std::list<Waiter> waiters_;
};

// ---------------------------------------------------------------------------------------------
// The client: a pool of DEALER sockets (a ZeroMQ socket is used by one thread at a time), so that
// one thread blocked in get() does not stop another from calling set().

class TcpStore::Client {
 public:
  Client(std::string endpoint, std::string token, int64_t max_message_bytes)
      : endpoint_(std::move(endpoint)),
        token_(std::move(token)),
        max_message_bytes_(max_message_bytes) {}

  ~Client() {
    idle_.clear();  // sockets first, then the context
  }

  // Sends [token][id][op][arguments] and returns the payload of the "ok" answer. `keys` name
  // what the call is about in its errors.
  std::vector<std::string> call(const std::string& op, const std::vector<std::string>& arguments,
                                const std::vector<std::string>& keys, Milliseconds timeout) {
    for (const auto& key : keys)
      EMBER_CHECK(key.size() <= kMaxKeyBytes, "store ", endpoint_, ": key '", key.substr(0, 60),
                  "...' is ", key.size(), " bytes, more than the ", kMaxKeyBytes, " allowed");
    for (const auto& argument : arguments)
      EMBER_CHECK(int64_t(argument.size()) + 1024 <= max_message_bytes_, "store ", endpoint_, ": ",
                  op, " of '", keys.at(0), "' carries ", argument.size(),
                  " bytes, more than a message may hold (", max_message_bytes_, " bytes)");

    std::unique_ptr<zmq::socket_t> socket = take_socket();
    const std::string request_id = std::to_string(next_request_id_++);
    const auto deadline = Clock::now() + timeout;

    std::vector<zmq::message_t> request;
    request.emplace_back(token_.data(), token_.size());
    request.emplace_back(request_id.data(), request_id.size());
    request.emplace_back(op.data(), op.size());
    for (const auto& argument : arguments) request.emplace_back(argument.data(), argument.size());
    // The message is queued even before the server is there; ZeroMQ delivers it on connecting.
    socket->set(zmq::sockopt::sndtimeo, int(std::max<int64_t>(1, timeout.count())));
    bool sent = false;
    try {
      sent = bool(zmq::send_multipart(*socket, request));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw Error(str_cat("store ", endpoint_, ": ", e.what()));
    }

    bool server_answered = false;
    std::vector<std::string> missing = keys;
    while (sent) {
      // Once the server has parked the request, its own "timeout" answer (which names the keys
      // still missing) is given a moment to arrive after the deadline.
      const auto until = server_answered ? deadline + kServerTimeoutGrace : deadline;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) break;
      std::vector<zmq::message_t> frames;
      try {
        zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
        if (!(item.revents & ZMQ_POLLIN)) continue;
        if (!zmq::recv_multipart(*socket, std::back_inserter(frames), zmq::recv_flags::dontwait))
          continue;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal arrived: keep waiting
        throw Error(str_cat("store ", endpoint_, ": ", e.what()));
      }
      if (frames.size() < 2 || frame_text(frames[0]) != request_id) continue;  // a stale answer
      server_answered = true;
      const std::string status = frame_text(frames[1]);
      std::vector<std::string> payload;
      for (size_t i = 2; i < frames.size(); ++i) payload.push_back(frame_text(frames[i]));
      if (status == "pending") continue;
      if (status == "ok") {
        give_back(std::move(socket));
        return payload;
      }
      if (status == "error") {
        give_back(std::move(socket));
        throw Error(str_cat("store ", endpoint_, ": ",
                            payload.empty() ? std::string("error") : payload[0]));
      }
      if (status == "timeout") {
        missing = payload;
        break;
      }
    }
    // The socket may still hold the unanswered request: closed, never reused, so that a late
    // server does not act on it.
    socket.reset();
    if (!server_answered)
      throw TimeoutError(str_cat("store: no store answered at ", endpoint_, " within ",
                                 timeout.count(), " ms (is rank 0 running? ", op, " of ",
                                 quoted_keys(keys),
                                 "; a wrong EMBER_DIST_TOKEN is ignored by the server too)"));
    throw TimeoutError(str_cat("store ", endpoint_, ": timed out after ", timeout.count(),
                               " ms waiting for ", quoted_keys(missing.empty() ? keys : missing)));
  }

 private:
  std::unique_ptr<zmq::socket_t> take_socket() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto socket = std::move(idle_.back());
        idle_.pop_back();
        return socket;
      }
    }
    auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->connect(endpoint_);
    return socket;
  }

  void give_back(std::unique_ptr<zmq::socket_t> socket) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(socket));
  }

  std::string endpoint_, token_;
  int64_t max_message_bytes_;
  zmq::context_t context_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<zmq::socket_t>> idle_;
  std::atomic<uint64_t> next_request_id_{1};
};

// ---------------------------------------------------------------------------------------------

TcpStore::TcpStore(std::string host, int port, TcpStoreOptions options)
    : host_(std::move(host)), port_(port) {
  EMBER_CHECK(!host_.empty(), "store: no host given");
  EMBER_CHECK(port >= 0 && port <= 65535, "store: port ", port, " is not in 0..65535");
  EMBER_CHECK(options.is_server || port > 0, "store: a client needs the server's port, not 0");
  timeout_ = options.timeout;
  if (options.is_server) {
    server_ = std::make_unique<Server>(port, options.token, options.max_message_bytes);
    port_ = server_->port();
  }
  client_ = std::make_unique<Client>(address(), options.token, options.max_message_bytes);
}

TcpStore::~TcpStore() {
  client_.reset();
  server_.reset();
}

std::string TcpStore::address() const {
  return str_cat("tcp://", host_, ":", port_);
}

void TcpStore::set(const std::string& key, const Bytes& value) {
  client_->call("set", {key, to_string(value)}, {key}, timeout_);
}

Bytes TcpStore::get(const std::string& key) {
  const auto payload =
      client_->call("get", {std::to_string(timeout_.count()), key}, {key}, timeout_);
  EMBER_CHECK(payload.size() == 1, "store ", address(), ": malformed answer to get of '", key, "'");
  return to_bytes(payload[0]);
}

int64_t TcpStore::add(const std::string& key, int64_t delta) {
  const auto payload = client_->call("add", {key, std::to_string(delta)}, {key}, timeout_);
  int64_t value = 0;
  EMBER_CHECK(payload.size() == 1 && parse_integer(payload[0], value), "store ", address(),
              ": malformed answer to add of '", key, "'");
  return value;
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  if (keys.empty()) return true;
  const auto payload = client_->call("check", keys, keys, timeout_);
  EMBER_CHECK(payload.size() == 1, "store ", address(), ": malformed answer to check");
  return payload[0] == "1";
}

void TcpStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  if (keys.empty()) return;
  std::vector<std::string> arguments{std::to_string(timeout.count())};
  arguments.insert(arguments.end(), keys.begin(), keys.end());
  client_->call("wait", arguments, keys, timeout);
}

}  // namespace ember::dist
