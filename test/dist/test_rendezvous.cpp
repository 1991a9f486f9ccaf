// The rendezvous: parsing env://, tcp://HOST:PORT and file://PATH with an error for every missing
// or malformed part, and ranks (threads here; processes in test/mp/test_launch.cpp) that join
// through each kind of store.
#include <arpa/inet.h>  // htonl
#include <doctest/doctest.h>
#include <netinet/in.h>  // sockaddr_in
#include <stdlib.h>      // setenv, unsetenv
#include <sys/socket.h>  // socket, bind
#include <unistd.h>      // close

#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "dist/rendezvous.h"
#include "dist/tcp_store.h"
#include "free_port.h"
#include "temporary_files.h"

using namespace ember;
using namespace ember::dist;
using ember::test::contains;
using ember::test::error_of;
using ember::test::free_port;
using std::chrono::milliseconds;

namespace {

// Sets the rendezvous variables for one test and puts the old values back afterwards.
class Environment {
 public:
  Environment() {
    for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
                             "LOCAL_WORLD_SIZE", "EMBER_DIST_TOKEN"}) {
      const char* value = getenv(name);
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
      unsetenv(name);
    }
  }
  ~Environment() {
    for (const auto& [name, value] : saved_)
      value ? (void)setenv(name.c_str(), value->c_str(), 1) : (void)unsetenv(name.c_str());
  }
  void set(const char* name, const std::string& value) { setenv(name, value.c_str(), 1); }
  void unset(const char* name) { unsetenv(name); }
  void set_all(int port = 29500) {
    set("MASTER_ADDR", "127.0.0.1");
    set("MASTER_PORT", std::to_string(port));
    set("RANK", "1");
    set("WORLD_SIZE", "4");
    set("LOCAL_RANK", "1");
    set("LOCAL_WORLD_SIZE", "2");
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// Runs rendezvous() for every rank of `world_size` on its own thread; each rank then adds its
// rank + 1 to a counter and waits for the total, proving that they share one store.
std::vector<Rendezvous> join_as_threads(const std::string& init_method, int world_size) {
  std::vector<Rendezvous> results(static_cast<size_t>(world_size));
  std::vector<std::string> errors(static_cast<size_t>(world_size));
  std::vector<std::thread> ranks;
  for (int r = 0; r < world_size; ++r)
    ranks.emplace_back([&, r] {
      try {
        Rendezvous joined = rendezvous(init_method, r, world_size, milliseconds(5000));
        joined.store->add("sum", r + 1);
        joined.store->add("arrived", 1);
        while (parse_counter("arrived", joined.store->get("arrived")) < world_size)
          std::this_thread::sleep_for(milliseconds(5));
        results[size_t(r)] = joined;
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& rank : ranks) rank.join();
  for (int r = 0; r < world_size; ++r) {
    INFO("rank " << r << ": " << errors[size_t(r)]);
    CHECK(errors[size_t(r)].empty());
  }
  return results;
}

}  // namespace

TEST_CASE("rendezvous parses env from the variables a launcher sets") {
  Environment env;
  env.set_all(29555);
  const InitMethod m = parse_init_method("env://", -1, -1);
  CHECK(m.scheme == "env");
  CHECK(m.host == "127.0.0.1");
  CHECK(m.port == 29555);
  CHECK(m.rank == 1);
  CHECK(m.world_size == 4);
  CHECK(m.local_rank == 1);
  CHECK(m.local_world_size == 2);
  // a rank and world size given by the program win over the variables
  const InitMethod given = parse_init_method("env://", 3, 8);
  CHECK(given.rank == 3);
  CHECK(given.world_size == 8);
  // without LOCAL_RANK and LOCAL_WORLD_SIZE: one node
  env.unset("LOCAL_RANK");
  env.unset("LOCAL_WORLD_SIZE");
  const InitMethod one_node = parse_init_method("env://", -1, -1);
  CHECK(one_node.local_rank == 1);
  CHECK(one_node.local_world_size == 4);
  CHECK(rendezvous_in_environment());
  env.unset("WORLD_SIZE");
  CHECK_FALSE(rendezvous_in_environment());
}

TEST_CASE("rendezvous env errors name the variable") {
  for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"}) {
    Environment env;
    env.set_all();
    env.unset(name);
    const std::string message = error_of([] { parse_init_method("env://", -1, -1); });
    CHECK(message == std::string("env://: ") + name + " is not set");
  }
  struct Case {
    const char* name;
    const char* value;
    const char* expected;
  };
  for (const Case& c : {Case{"MASTER_PORT", "abc", "env://: MASTER_PORT 'abc' is not a port"},
                        Case{"MASTER_PORT", "0", "MASTER_PORT '0' is not a port"},
                        Case{"MASTER_PORT", "70000", "MASTER_PORT '70000' is not a port"},
                        Case{"MASTER_ADDR", "", "env://: MASTER_ADDR is empty"},
                        Case{"RANK", "one", "env://: RANK='one' is not an integer"},
                        Case{"WORLD_SIZE", "4x", "env://: WORLD_SIZE='4x' is not an integer"},
                        Case{"LOCAL_RANK", "", "env://: LOCAL_RANK='' is not an integer"},
                        Case{"RANK", "4", "env://: rank 4 is not in 0..3"},
                        Case{"RANK", "-1", "env://: rank -1 is not in 0..3"},
                        Case{"WORLD_SIZE", "0", "env://: world size 0 must be at least 1"},
                        Case{"LOCAL_RANK", "2", "env://: local rank 2 is not in 0..1"},
                        Case{"LOCAL_WORLD_SIZE", "9", "env://: local world size 9"}}) {
    Environment env;
    env.set_all();
    env.set(c.name, c.value);
    const std::string message = error_of([] { parse_init_method("env://", -1, -1); });
    INFO(c.name << "=" << c.value << ": " << message);
    CHECK(contains(message, c.expected));
  }
}

TEST_CASE("rendezvous tcp and file urls give an error for every bad part") {
  Environment env;
  const InitMethod tcp = parse_init_method("tcp://node7.cluster:23456", 2, 3);
  CHECK(tcp.scheme == "tcp");
  CHECK(tcp.host == "node7.cluster");
  CHECK(tcp.port == 23456);
  CHECK(tcp.rank == 2);
  CHECK(tcp.world_size == 3);
  CHECK(tcp.local_rank == 2);
  const InitMethod file = parse_init_method("file:///shared/job/store", 0, 2);
  CHECK(file.scheme == "file");
  CHECK(file.path == "/shared/job/store");

  struct Case {
    const char* url;
    int rank, world_size;
    const char* expected;
  };
  for (const Case& c : {
           Case{"tcp://host", 0, 2, "--dist-url tcp://host: no port"},
           Case{"tcp://host:", 0, 2, "--dist-url tcp://host:: no port"},
           Case{"tcp://:29500", 0, 2, "--dist-url tcp://:29500: no host"},
           Case{"tcp://host:port", 0, 2, "--dist-url tcp://host:port: port 'port' is not a port"},
           Case{"tcp://host:99999", 0, 2, "port '99999' is not a port"},
           Case{"tcp://host:29500", -1, 2, "--dist-url tcp://host:29500: RANK is not set"},
           Case{"tcp://host:29500", 0, -1, "--dist-url tcp://host:29500: WORLD_SIZE is not set"},
           Case{"tcp://host:29500", 2, 2, "--dist-url tcp://host:29500: rank 2 is not in 0..1"},
           Case{"file://", 0, 1, "--dist-url file://: no path"},
           Case{"file:///tmp/x", 0, 0, "world size 0 must be at least 1"},
           Case{"udp://host:1", 0, 1, "--dist-url udp://host:1: unknown init method"},
           Case{"localhost:29500", 0, 1, "unknown init method (use env://, tcp://HOST:PORT"},
           Case{"env://host:1", 0, 1, "env:// takes nothing after it"},
       }) {
    const std::string message = error_of([&] { parse_init_method(c.url, c.rank, c.world_size); });
    INFO(c.url << ": " << message);
    CHECK(contains(message, c.expected));
  }
}

TEST_CASE("rendezvous over tcp joins ranks that are threads") {
  Environment env;
  const int port = free_port();
  const auto joined = join_as_threads("tcp://127.0.0.1:" + std::to_string(port), 3);
  for (int r = 0; r < 3; ++r) {
    CHECK(joined[size_t(r)].rank == r);
    CHECK(joined[size_t(r)].world_size == 3);
    CHECK(joined[size_t(r)].local_rank == r);
    CHECK(joined[size_t(r)].init_method == "tcp://127.0.0.1:" + std::to_string(port));
  }
  CHECK(to_string(joined[2].store->get("sum")) == "6");
}

TEST_CASE("rendezvous over env carries the job token") {
  Environment env;
  const int port = free_port();
  env.set("MASTER_ADDR", "127.0.0.1");
  env.set("MASTER_PORT", std::to_string(port));
  env.set("EMBER_DIST_TOKEN", "token-of-this-job");
  const auto joined = join_as_threads("env://", 2);
  CHECK(to_string(joined[1].store->get("sum")) == "3");
  // A client without the token is not answered.
  TcpStoreOptions options;
  options.timeout = milliseconds(300);
  TcpStore stranger("127.0.0.1", port, options);
  CHECK(contains(error_of([&] { stranger.get("sum"); }), "no store answered"));
}

TEST_CASE("rendezvous over a file joins ranks that are threads") {
  Environment env;
  test::TemporaryDirectory dir;
  const auto joined = join_as_threads("file://" + dir.file("rendezvous"), 3);
  CHECK(to_string(joined[0].store->get("sum")) == "6");
}

TEST_CASE("rendezvous names the ranks that did not join") {
  Environment env;
  test::TemporaryDirectory dir;
  std::string message;
  try {
    rendezvous("file://" + dir.file("store"), 0, 3, milliseconds(300));
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  CHECK(contains(message, "ranks 1, 2 did not join within 300 ms"));

  const std::string url = "tcp://127.0.0.1:" + std::to_string(free_port());
  try {
    rendezvous(url, 0, 2, milliseconds(300));
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  CHECK(contains(message, "rendezvous " + url + ": rank 1 did not join within 300 ms"));
}

TEST_CASE("rendezvous refuses a rank that joins twice") {
  Environment env;
  test::TemporaryDirectory dir;
  const std::string url = "file://" + dir.file("store");
  const Rendezvous first = rendezvous(url, 0, 1, milliseconds(1000));
  CHECK(first.world_size == 1);
  const std::string message = error_of([&] { rendezvous(url, 0, 1, milliseconds(1000)); });
  CHECK(contains(message, "rank 0 joined more than once"));
  CHECK(contains(message, "use a fresh path"));
}
