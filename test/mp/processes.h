// Running real processes from a test: start one with its output in files, wait for it with a
// time limit (a process that outlives it is killed and fails the test: nothing hangs), and a free
// loopback port for a store.
#pragma once

#include <arpa/inet.h>  // htonl
#include <doctest/doctest.h>
#include <fcntl.h>       // open
#include <netinet/in.h>  // sockaddr_in
#include <signal.h>      // kill
#include <stdlib.h>      // setenv
#include <sys/socket.h>  // socket, bind
#include <sys/wait.h>    // waitpid
#include <unistd.h>      // fork, execv

#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "free_port.h"
#include "temporary_files.h"

namespace ember::test {

struct Finished {
  int code = -1;  // the exit code, 128 + the signal for a signal
  std::string out, err;
  double seconds = 0;
};

// A started process whose stdout and stderr go to files.
struct Started {
  pid_t pid = -1;
  std::shared_ptr<TemporaryDirectory> dir;
  std::string out_path, err_path;
  std::chrono::steady_clock::time_point start;

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::string out() const { return read_file(out_path); }
  std::string err() const { return read_file(err_path); }
};

// Starts `args` (args[0] a path) with `environment` added to this process's.
inline Started start_process(const std::vector<std::string>& args,
                             const std::map<std::string, std::string>& environment = {}) {
  Started p;
  p.dir = std::make_shared<TemporaryDirectory>("ember-mp");
  p.out_path = p.dir->file("out");
  p.err_path = p.dir->file("err");
  p.start = std::chrono::steady_clock::now();
  p.pid = fork();
  REQUIRE(p.pid >= 0);
  if (p.pid == 0) {
    const int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& [name, value] : environment) setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(126);
  }
  return p;
}

// Waits for `p`; kills it (and fails the test) after `limit` seconds from its start.
// `signal_after` > 0 sends `signal` to it that many seconds after the start.
inline Finished wait_process(const Started& p, double limit = 20, double signal_after = 0,
                             int signal = SIGTERM) {
  Finished result;
  int status = 0;
  bool signalled = false;
  while (waitpid(p.pid, &status, WNOHANG) == 0) {
    if (signal_after > 0 && !signalled && p.elapsed() >= signal_after) {
      kill(p.pid, signal);
      signalled = true;
    }
    if (p.elapsed() > limit) {
      kill(p.pid, SIGKILL);
      waitpid(p.pid, &status, 0);
      FAIL("still running after ", limit, " s: ", p.err());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  result.seconds = p.elapsed();
  result.code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  result.out = p.out();
  result.err = p.err();
  return result;
}

// Runs `args` to the end (see wait_process).
inline Finished run(const std::vector<std::string>& args, double limit = 20,
                    double signal_after = 0, int signal = SIGTERM,
                    const std::map<std::string, std::string>& environment = {}) {
  return wait_process(start_process(args, environment), limit, signal_after, signal);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace ember::test
