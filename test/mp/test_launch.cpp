// bin/launch with real processes: the rendezvous variables of every rank, whole prefixed lines,
// a failing rank that stops its siblings, signals, bad flags; and the TcpStore and FileStore
// shared by processes that bin/launch started (test/mp/programs/store_ranks.cpp).
#include <arpa/inet.h>  // htonl
#include <doctest/doctest.h>
#include <fcntl.h>       // open
#include <netinet/in.h>  // sockaddr_in
#include <signal.h>      // kill
#include <sys/socket.h>  // socket, bind
#include <sys/wait.h>    // waitpid
#include <unistd.h>      // fork, execv

#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mp/processes.h"
#include "temporary_files.h"

using ember::test::contains;
using ember::test::Finished;
using ember::test::free_port;
using ember::test::lines_of;
using ember::test::read_file;
using ember::test::run;
using ember::test::TemporaryDirectory;

namespace {

const std::string kLaunch = std::string(EMBER_BIN_DIR) + "/launch";
const std::string kStoreRanks = std::string(EMBER_MP_PROGRAM_DIR) + "/store_ranks";

}  // namespace

TEST_CASE("launch gives every rank the rendezvous variables") {
  const Finished f =
      run({kLaunch, "--nproc", "3", "--nnodes", "2", "--node-rank", "1", "--master-addr",
           "10.1.2.3", "--master-port", "23456", "--", "/bin/sh", "-c",
           "echo R=$RANK W=$WORLD_SIZE L=$LOCAL_RANK LW=$LOCAL_WORLD_SIZE "
           "A=$MASTER_ADDR P=$MASTER_PORT"});
  INFO(f.err);
  CHECK(f.code == 0);
  for (int i = 0; i < 3; ++i) {
    const int rank = 3 + i;
    CHECK(contains(f.out, "[rank " + std::to_string(rank) + "] R=" + std::to_string(rank) +
                              " W=6 L=" + std::to_string(i) + " LW=3 A=10.1.2.3 P=23456\n"));
  }
  CHECK(lines_of(f.out).size() == 3);

  // One node: the default port, and a job token made up for the job, the same for every rank.
  const Finished one = run(
      {kLaunch, "--nproc", "2", "--", "/bin/sh", "-c", "echo P=$MASTER_PORT T=$EMBER_DIST_TOKEN"});
  const auto lines = lines_of(one.out);
  REQUIRE(lines.size() == 2);
  CHECK(contains(lines[0], "P=29500 T="));
  CHECK(lines[0].size() > std::string("[rank 0] P=29500 T=").size() + 16);
  CHECK(lines[0].substr(9) == lines[1].substr(9));
}

TEST_CASE("launch prefixes whole lines of stdout and stderr") {
  // Every rank writes many long lines to both streams at once, and a last line without '\n'.
  const std::string script =
      "i=0; while [ $i -lt 100 ]; do "
      "echo \"out $RANK $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; "
      "echo \"err $RANK $i yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\" >&2; "
      "i=$((i+1)); done; printf \"tail $RANK\"";
  const Finished f = run({kLaunch, "--nproc", "3", "--", "/bin/sh", "-c", script});
  CHECK(f.code == 0);
  const std::regex out_line(R"(\[rank (\d)\] (out \1 \d+ x{67}|tail \1))");
  const std::regex err_line(R"(\[rank (\d)\] err \1 \d+ y{64})");
  const auto out = lines_of(f.out), err = lines_of(f.err);
  CHECK(out.size() == 3 * 101);
  CHECK(err.size() == 3 * 100);
  for (const auto& line : out) {
    INFO(line);
    CHECK(std::regex_match(line, out_line));
  }
  for (const auto& line : err) {
    INFO(line);
    CHECK(std::regex_match(line, err_line));
  }
  CHECK(contains(f.out, "[rank 2] tail 2\n"));
}

TEST_CASE("launch stops the other ranks when one fails and exits with its code") {
  const Finished f = run({kLaunch, "--nproc", "3", "--", "/bin/sh", "-c",
                          "if [ $RANK = 1 ]; then sleep 0.2; echo failing; exit 3; fi; sleep 30"});
  CHECK(f.code == 3);
  CHECK(f.seconds < 5);
  CHECK(contains(f.out, "[rank 1] failing"));
  CHECK(contains(f.err, "launch: rank 1 exited with code 3; stopping the other ranks"));

  const Finished killed = run({kLaunch, "--nproc", "2", "--", "/bin/sh", "-c",
                               "if [ $RANK = 0 ]; then kill -9 $$; fi; sleep 30"});
  CHECK(killed.code == 128 + 9);
  CHECK(killed.seconds < 5);
  CHECK(contains(killed.err, "launch: rank 0 was killed by signal 9"));

  // A rank that ignores SIGTERM gets SIGKILL after the grace period.
  const Finished stubborn =
      run({kLaunch, "--nproc", "2", "--grace-period", "0.5", "--", "/bin/sh", "-c",
           "if [ $RANK = 0 ]; then sleep 0.2; exit 4; fi; trap '' TERM; "
           "while true; do sleep 0.05; done"});
  CHECK(stubborn.code == 4);
  CHECK(stubborn.seconds < 5);
  CHECK(contains(stubborn.err, "sending SIGKILL"));
}

TEST_CASE("launch passes SIGTERM and SIGINT on to every rank") {
  const std::string script =
      "trap 'echo stopping; exit 0' TERM INT; echo started; while true; do sleep 0.05; done";
  const Finished terminated =
      run({kLaunch, "--nproc", "2", "--", "/bin/sh", "-c", script}, 20, 0.5, SIGTERM);
  CHECK(terminated.code == 128 + SIGTERM);
  CHECK(contains(terminated.out, "[rank 0] stopping"));
  CHECK(contains(terminated.out, "[rank 1] stopping"));
  const Finished interrupted =
      run({kLaunch, "--nproc", "2", "--", "/bin/sh", "-c", script}, 20, 0.5, SIGINT);
  CHECK(interrupted.code == 128 + SIGINT);
  CHECK(contains(interrupted.out, "[rank 1] stopping"));
}

TEST_CASE("launch rejects bad flags and missing programs") {
  struct Case {
    std::vector<std::string> args;
    const char* expected;
  };
  for (const Case& c : {
           Case{{"--nproc", "0", "--", "/bin/true"}, "--nproc"},
           Case{{"--nproc", "x", "--", "/bin/true"}, "--nproc"},
           Case{{"--", "/bin/true"}, "--nproc is required"},
           Case{{"--nproc", "2", "--bogus", "--", "/bin/true"}, "--bogus"},
           Case{{"--nproc", "2", "--master-port", "70000", "--", "/bin/true"}, "--master-port"},
           Case{{"--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--", "/bin/true"},
                "--node-rank 2 is not in 0..1"},
           Case{{"--nproc", "2"}, "program is required"},
           Case{{"--nproc", "2", "--", "/no/such/program"}, "'/no/such/program' not found"},
           Case{{"--nproc", "2", "--", "no_such_program_anywhere"}, "not found in PATH"},
       }) {
    std::vector<std::string> args{kLaunch};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Finished f = run(args);
    INFO(f.err);
    CHECK(f.code != 0);
    CHECK(contains(f.err, c.expected));
  }
}

TEST_CASE("launch runs ranks that share a tcp store through env rendezvous") {
  const std::string port = std::to_string(free_port());
  const Finished f = run({kLaunch, "--nproc", "3", "--master-port", port, "--", kStoreRanks});
  INFO(f.err);
  CHECK(f.code == 0);
  for (int r = 0; r < 3; ++r)
    CHECK(contains(f.out, "[rank " + std::to_string(r) + "] rank " + std::to_string(r) +
                              " of 3 local " + std::to_string(r) + "/3 sum 6\n"));
}

TEST_CASE("launch runs ranks that share a file store") {
  TemporaryDirectory dir;
  const Finished f =
      run({kLaunch, "--nproc", "3", "--", kStoreRanks, "file://" + dir.file("store")});
  INFO(f.err);
  CHECK(f.code == 0);
  CHECK(contains(f.out, "[rank 2] rank 2 of 3 local 2/3 sum 6\n"));
}

TEST_CASE("launch stops ranks waiting on the store when one rank fails") {
  const std::string port = std::to_string(free_port());
  const Finished f =
      run({kLaunch, "--nproc", "3", "--master-port", port, "--", kStoreRanks, "--fail-rank", "2"});
  CHECK(f.code == 7);
  CHECK(f.seconds < 8);
  CHECK(contains(f.out, "[rank 2] rank 2 failing on purpose"));
  CHECK(contains(f.err, "launch: rank 2 exited with code 7"));
}
