// TcpStore between threads of one process: the Store operations, waiting for keys set later,
// timeouts that name the keys and the address, a client that starts before its server, the job
// token, garbage sent to the server's port, and a prompt destructor. (Between processes:
// test/mp/test_launch.cpp.)
#include <arpa/inet.h>  // htons, inet_pton
#include <doctest/doctest.h>
#include <netinet/in.h>  // sockaddr_in
#include <sys/socket.h>  // socket, connect
#include <unistd.h>      // close, write

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>
#include <zmq.hpp>        // a raw client for malformed messages
#include <zmq_addon.hpp>  // send_multipart

#include "dist/tcp_store.h"
#include "free_port.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::contains;
using ember::test::free_port;
using std::chrono::milliseconds;

namespace {

TcpStoreOptions server_options(milliseconds timeout = milliseconds(5000)) {
  TcpStoreOptions options;
  options.is_server = true;
  options.timeout = timeout;
  return options;
}

TcpStoreOptions client_options(milliseconds timeout = milliseconds(5000)) {
  TcpStoreOptions options;
  options.timeout = timeout;
  return options;
}

// The message of the TimeoutError that body() throws, or "" (any other outcome fails).
template <typename Body>
std::string timeout_of(Body&& body) {
  try {
    body();
  } catch (const TimeoutError& e) {
    return e.what();
  }
  FAIL("no TimeoutError");
  return "";
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("tcp store set get add and check between threads") {
  TcpStore server("127.0.0.1", 0, server_options());
  CHECK(server.port() > 0);
  CHECK(server.address() == "tcp://127.0.0.1:" + std::to_string(server.port()));
  server.set("greeting", to_bytes("hello"));
  std::thread other([port = server.port()] {
    TcpStore client("127.0.0.1", port, client_options());
    CHECK(to_string(client.get("greeting")) == "hello");
    client.set("reply", to_bytes(std::string("bin\0ary", 7)));
    CHECK(client.add("counter", 5) == 5);
  });
  other.join();
  CHECK(server.get("reply") == to_bytes(std::string("bin\0ary", 7)));
  CHECK(server.add("counter", -2) == 3);
  CHECK(parse_counter("counter", server.get("counter")) == 3);
  CHECK(server.check({"greeting", "reply", "counter"}));
  CHECK_FALSE(server.check({"greeting", "absent"}));
  server.set("greeting", to_bytes("replaced"));
  CHECK(to_string(server.get("greeting")) == "replaced");
  // an empty value is a value
  server.set("empty", {});
  CHECK(server.get("empty").empty());
}

TEST_CASE("tcp store get and wait return when the key is set later") {
  TcpStore server("127.0.0.1", 0, server_options());
  TcpStore client("127.0.0.1", server.port(), client_options());
  const auto start = std::chrono::steady_clock::now();
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(200));
    server.set("late", to_bytes("here"));
    std::this_thread::sleep_for(milliseconds(100));
    server.add("later", 1);
  });
  CHECK(to_string(client.get("late")) == "here");
  client.wait({"late", "later"}, milliseconds(5000));
  setter.join();
  const double waited = seconds_since(start);
  CHECK(waited >= 0.25);
  CHECK(waited < 3.0);
}

TEST_CASE("tcp store timeouts name the missing keys and the address") {
  TcpStore server("127.0.0.1", 0, server_options());
  TcpStore client("127.0.0.1", server.port(), client_options(milliseconds(300)));
  client.set("present", to_bytes("1"));
  const auto start = std::chrono::steady_clock::now();
  const std::string waited = timeout_of([&] {
    client.wait({"present", "missing_one"}, milliseconds(300));
  });
  CHECK(seconds_since(start) < 2.0);
  CHECK(contains(waited, "'missing_one'"));
  CHECK_FALSE(contains(waited, "'present'"));
  CHECK(contains(waited, server.address()));
  const std::string got = timeout_of([&] { client.get("never_set"); });
  CHECK(contains(got, "'never_set'"));
  CHECK(contains(got, "timed out after 300 ms"));
  // the store still answers after timeouts
  CHECK(client.add("n", 1) == 1);
}

TEST_CASE("tcp store client that starts before the server waits for it") {
  const int port = free_port();
  std::string value;
  std::thread early([&] {
    TcpStore client("127.0.0.1", port, client_options(milliseconds(5000)));
    value = to_string(client.get("key"));
  });
  std::this_thread::sleep_for(milliseconds(300));
  TcpStore server("127.0.0.1", port, server_options());
  server.set("key", to_bytes("found"));
  early.join();
  CHECK(value == "found");
}

TEST_CASE("tcp store client without a server says that no store answered") {
  const int port = free_port();
  TcpStore client("127.0.0.1", port, client_options(milliseconds(300)));
  const auto start = std::chrono::steady_clock::now();
  const std::string message = timeout_of([&] { client.set("a_key", to_bytes("v")); });
  CHECK(seconds_since(start) < 2.0);
  CHECK(contains(message, "no store answered at tcp://127.0.0.1:" + std::to_string(port)));
  CHECK(contains(message, "is rank 0 running?"));
  CHECK(contains(message, "'a_key'"));
}

TEST_CASE("tcp store accepts the job token and ignores requests without it") {
  TcpStoreOptions options = server_options();
  options.token = "job-secret";
  TcpStore server("127.0.0.1", 0, options);
  server.set("k", to_bytes("v"));  // the server's own client carries the token

  TcpStoreOptions right = client_options();
  right.token = "job-secret";
  TcpStore good("127.0.0.1", server.port(), right);
  CHECK(to_string(good.get("k")) == "v");

  for (const std::string token : {"wrong", ""}) {
    TcpStoreOptions wrong = client_options(milliseconds(300));
    wrong.token = token;
    TcpStore bad("127.0.0.1", server.port(), wrong);
    const std::string message = timeout_of([&] { bad.set("k", to_bytes("overwritten")); });
    CHECK(contains(message, "no store answered"));
  }
  CHECK(to_string(good.get("k")) == "v");
}

TEST_CASE("tcp store server survives garbage and keeps answering") {
  TcpStoreOptions options = server_options();
  options.max_message_bytes = 1 << 20;
  options.token = "t";
  TcpStore server("127.0.0.1", 0, options);

  // Random bytes on a raw TCP connection: not ZeroMQ, the handshake fails.
  std::mt19937 random(7);
  for (int round = 0; round < 20; ++round) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(uint16_t(server.port()));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    std::vector<uint8_t> junk(size_t(1 + random() % 4096));
    for (auto& byte : junk) byte = uint8_t(random());
    if (round == 0) junk.assign(64, 0xff);  // looks like a ZMTP signature with a huge length
    (void)!write(fd, junk.data(), junk.size());
    close(fd);
  }

  // Well-formed ZeroMQ, malformed requests.
  zmq::context_t context;
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(server.address());
  auto send = [&](std::vector<std::string> parts) {
    std::vector<zmq::message_t> frames;
    for (const auto& part : parts) frames.emplace_back(part.data(), part.size());
    REQUIRE(zmq::send_multipart(raw, frames));
  };
  send({"t"});
  send({"t", "1"});
  send({"t", "2", "bogus_op", "k"});
  send({"t", "3", "add", "k", "not-a-number"});
  send({"t", "4", "add", "k"});
  send({"t", "5", "set", "k"});
  send({"t", "6", "get", "-5", "k"});
  send({"t", "7", "get", "abc", "k"});
  send({"t", std::string(1000, '9'), "set", "k", "v"});
  send({"t", "8", "set", std::string(TcpStore::kMaxKeyBytes + 1, 'k'), "v"});
  send({"wrong", "9", "set", "k", "v"});
  send({"t", "10", "check"});
  send({"t", "11", "wait", "100"});
  // A valid request on the same connection: its answer comes after the ones above were read.
  send({"t", "12", "check", "k"});
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&item, 1, milliseconds(3000)) == 1);
  std::vector<zmq::message_t> answer;
  REQUIRE(zmq::recv_multipart(raw, std::back_inserter(answer)));
  REQUIRE(answer.size() == 3);
  CHECK(answer[0].to_string() == "12");
  CHECK(answer[1].to_string() == "ok");
  CHECK(answer[2].to_string() == "0");  // the malformed set and add stored nothing
  send({std::string(3 << 20, 'x')});    // larger than max_message_bytes: the connection is dropped
  std::this_thread::sleep_for(milliseconds(100));

  // The server is alive, and none of the malformed requests changed anything.
  TcpStoreOptions client = client_options();
  client.token = "t";
  client.max_message_bytes = options.max_message_bytes;
  TcpStore good("127.0.0.1", server.port(), client);
  CHECK(good.add("k", 1) == 1);
  good.set("after", to_bytes("fine"));
  CHECK(to_string(server.get("after")) == "fine");
  // A value too large for a message is refused by the client, by name.
  const std::string big = test::error_of([&] { good.set("big", Bytes(2 << 20)); });
  CHECK(contains(big, "'big'"));
  CHECK(contains(big, "more than a message may hold"));
}

TEST_CASE("tcp store add on a value that is not an integer is an error") {
  TcpStore server("127.0.0.1", 0, server_options());
  server.set("text", to_bytes("abc"));
  const std::string message = test::error_of([&] { server.add("text", 1); });
  CHECK(contains(message, "'text'"));
  CHECK(contains(message, "not an integer"));
  CHECK(server.add("number", 2) == 2);
}

TEST_CASE("tcp store one client is used by several threads") {
  TcpStore server("127.0.0.1", 0, server_options());
  TcpStore shared("127.0.0.1", server.port(), client_options());
  // One thread blocks in get() on the shared client while the others go on using it.
  std::thread waiter([&] { CHECK(to_string(shared.get("done")) == "yes"); });
  std::vector<std::thread> adders;
  for (int t = 0; t < 6; ++t)
    adders.emplace_back([&] {
      for (int i = 0; i < 40; ++i) shared.add("count", 1);
    });
  for (auto& adder : adders) adder.join();
  shared.set("done", to_bytes("yes"));
  waiter.join();
  CHECK(parse_counter("count", shared.get("count")) == 240);
}

TEST_CASE("tcp store destructor is prompt with pending waiters") {
  auto server = std::make_unique<TcpStore>("127.0.0.1", 0, server_options());
  const int port = server->port();
  std::atomic<bool> timed_out{false};
  std::thread waiter([&] {
    TcpStore client("127.0.0.1", port, client_options(milliseconds(800)));
    try {
      client.wait({"never"}, milliseconds(800));
    } catch (const TimeoutError&) {
      timed_out = true;
    }
  });
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  CHECK(seconds_since(start) < 0.5);
  waiter.join();
  CHECK(timed_out);
}

TEST_CASE("tcp store constructor errors name the port") {
  TcpStore first("127.0.0.1", 0, server_options());
  const std::string taken =
      test::error_of([&] { TcpStore second("127.0.0.1", first.port(), server_options()); });
  CHECK(contains(taken, std::to_string(first.port())));
  CHECK(contains(test::error_of([] { TcpStore bad("127.0.0.1", 70000); }), "70000"));
}
