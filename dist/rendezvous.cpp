// The rendezvous (see rendezvous.h): parsing the init method, making the store, and the join.
#include "dist/rendezvous.h"

#include <charconv>
#include <cstdlib>  // getenv

#include "dist/file_store.h"  // FileStore
#include "dist/tcp_store.h"   // TcpStore
#include "engine/error.h"     // EMBER_CHECK, str_cat

namespace ember::dist {

namespace {

bool parse_int(const std::string& text, int& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

// The integer in environment variable `name`; `fallback` when it is unset and a fallback is
// allowed; an error naming the variable otherwise.
int env_int(const std::string& where, const char* name, const int* fallback = nullptr) {
  const char* text = std::getenv(name);
  if (!text) {
    EMBER_CHECK(fallback, where, ": ", name, " is not set");
    return *fallback;
  }
  int value = 0;
  EMBER_CHECK(parse_int(text, value), where, ": ", name, "='", text, "' is not an integer");
  return value;
}

int parse_port(const std::string& where, const std::string& text, const std::string& what) {
  int port = 0;
  EMBER_CHECK(parse_int(text, port) && port >= 1 && port <= 65535, where, ": ", what, " '", text,
              "' is not a port number (1..65535)");
  return port;
}

void check_ranks(const std::string& where, const InitMethod& m) {
  EMBER_CHECK(m.world_size >= 1, where, ": world size ", m.world_size, " must be at least 1");
  EMBER_CHECK(m.rank >= 0 && m.rank < m.world_size, where, ": rank ", m.rank, " is not in 0..",
              m.world_size - 1, " (world size ", m.world_size, ")");
  EMBER_CHECK(m.local_world_size >= 1 && m.local_world_size <= m.world_size, where,
              ": local world size ", m.local_world_size, " is not in 1..", m.world_size);
  EMBER_CHECK(m.local_rank >= 0 && m.local_rank < m.local_world_size, where, ": local rank ",
              m.local_rank, " is not in 0..", m.local_world_size - 1);
}

// Rank and world size given by the program, or (-1) from RANK and WORLD_SIZE.
void given_or_environment(const std::string& where, int rank, int world_size, InitMethod& m) {
  m.rank = rank >= 0 ? rank : env_int(where, "RANK");
  m.world_size = world_size >= 0 ? world_size : env_int(where, "WORLD_SIZE");
  m.local_rank = env_int(where, "LOCAL_RANK", &m.rank);
  m.local_world_size = env_int(where, "LOCAL_WORLD_SIZE", &m.world_size);
  if (!std::getenv("LOCAL_RANK") || !std::getenv("LOCAL_WORLD_SIZE")) {
    // Without both, assume one node: the local rank is the rank.
    m.local_rank = m.rank;
    m.local_world_size = m.world_size;
  }
}

std::string join_ranks(const std::vector<int>& ranks) {
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return out;
}

}  // namespace

InitMethod parse_init_method(const std::string& init_method, int rank, int world_size) {
  InitMethod m;
  const size_t colon = init_method.find("://");
  m.scheme = colon == std::string::npos ? "" : init_method.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : init_method.substr(colon + 3);
  const std::string where = "--dist-url " + init_method;

  if (m.scheme == "env") {
    const std::string env_where = "env://";
    EMBER_CHECK(rest.empty(), where, ": env:// takes nothing after it (the address comes from ",
                "MASTER_ADDR and MASTER_PORT)");
    const char* address = std::getenv("MASTER_ADDR");
    EMBER_CHECK(address, env_where, ": MASTER_ADDR is not set");
    EMBER_CHECK(*address, env_where, ": MASTER_ADDR is empty");
    m.host = address;
    const char* port = std::getenv("MASTER_PORT");
    EMBER_CHECK(port, env_where, ": MASTER_PORT is not set");
    m.port = parse_port(env_where, port, "MASTER_PORT");
    given_or_environment(env_where, rank, world_size, m);
    check_ranks(env_where, m);
  } else if (m.scheme == "tcp") {
    const size_t port_colon = rest.rfind(':');
    EMBER_CHECK(port_colon != std::string::npos && port_colon + 1 < rest.size(), where,
                ": no port (tcp://HOST:PORT)");
    m.host = rest.substr(0, port_colon);
    EMBER_CHECK(!m.host.empty(), where, ": no host (tcp://HOST:PORT)");
    EMBER_CHECK(m.host.find('/') == std::string::npos, where, ": host '", m.host,
                "' is not a host name or address");
    m.port = parse_port(where, rest.substr(port_colon + 1), "port");
    given_or_environment(where, rank, world_size, m);
    check_ranks(where, m);
  } else if (m.scheme == "file") {
    EMBER_CHECK(!rest.empty(), where, ": no path (file://PATH)");
    m.path = rest;
    given_or_environment(where, rank, world_size, m);
    check_ranks(where, m);
  } else {
    throw Error(
        str_cat(where, ": unknown init method (use env://, tcp://HOST:PORT or ", "file://PATH)"));
  }
  return m;
}

bool rendezvous_in_environment() {
  return std::getenv("RANK") && std::getenv("WORLD_SIZE");
}

Rendezvous rendezvous(const std::string& init_method, int rank, int world_size,
                      Milliseconds timeout) {
  const InitMethod m = parse_init_method(init_method, rank, world_size);
  Rendezvous r;
  r.rank = m.rank;
  r.world_size = m.world_size;
  r.local_rank = m.local_rank;
  r.local_world_size = m.local_world_size;
  r.init_method = init_method;
  std::string address;
  if (m.scheme == "file") {
    r.store = std::make_shared<FileStore>(m.path, timeout);
    address = "file://" + m.path;
  } else {
    TcpStoreOptions options;
    options.is_server = m.rank == 0;
    options.timeout = timeout;
    if (const char* token = std::getenv("EMBER_DIST_TOKEN")) options.token = token;
    r.store = std::make_shared<TcpStore>(m.host, m.port, options);
    address = str_cat("tcp://", m.host, ":", m.port);
  }

  // The join: every rank marks itself and waits for all the others. A rank that is marked
  // twice means two processes with one RANK, or a file left by an earlier run.
  const std::string prefix = "ember/rendezvous/";
  const int64_t times = r.store->add(str_cat(prefix, "rank/", r.rank), 1);
  EMBER_CHECK(
      times == 1, "rendezvous ", address, ": rank ", r.rank,
      " joined more than once (two processes with the same rank",
      m.scheme == "file" ? ", or a store file left by an earlier run: use a fresh path)" : ")");
  std::vector<std::string> keys;
  for (int i = 0; i < r.world_size; ++i) keys.push_back(str_cat(prefix, "rank/", i));
  try {
    r.store->wait(keys, timeout);
  } catch (const TimeoutError& e) {
    std::vector<int> missing;
    try {
      for (int i = 0; i < r.world_size; ++i)
        if (!r.store->check({keys[i]})) missing.push_back(i);
    } catch (const Error&) {
      throw TimeoutError(str_cat("rendezvous ", address, ": ", e.what()));
    }
    throw TimeoutError(str_cat("rendezvous ", address, ": rank", missing.size() == 1 ? " " : "s ",
                               join_ranks(missing), " did", " not join within ", timeout.count(),
                               " ms (world size ", r.world_size, ")"));
  }
  return r;
}

}  // namespace ember::dist
