// bin/launch: starts the processes of a distributed job on this node, as torchrun does.
//
//   bin/launch --nproc 2 -- bin/train_cifar data/cifar-10-batches-bin --dist-url env://
//   bin/launch --nproc 4 --nnodes 2 --node-rank 1 --master-addr node0 -- PROGRAM ARGS...
//
// Each process gets MASTER_ADDR, MASTER_PORT, RANK = node_rank * nproc + i, WORLD_SIZE =
// nproc * nnodes, LOCAL_RANK = i and LOCAL_WORLD_SIZE = nproc (what rendezvous("env://") reads).
// On one node, a job token (EMBER_DIST_TOKEN) is made up when none is set, so that the store
// answers only this job's processes; across nodes, set the same one on every node. Unless set,
// OMP_NUM_THREADS is the node's cores divided by nproc.
//
// Every line a process writes (stdout and stderr, through pipes) comes out whole, prefixed with
// "[rank R] ". When a process fails (a non-zero exit or a signal), the others are sent SIGTERM,
// then SIGKILL after the grace period, and launch exits with the failed process's code (128 +
// the signal for a signal). SIGINT and SIGTERM sent to launch are passed on to every process.
//
// Each process reads its standard input from /dev/null and runs in its own process group, so that
// stopping it also stops whatever it started (a shell's children, say); what is left in a group
// when its process ends is killed with it.
#include <CLI/CLI.hpp>  // command-line flags
#include <fcntl.h>      // open, fcntl
#include <poll.h>       // poll
#include <signal.h>     // sigaction, kill
#include <sys/prctl.h>  // prctl(PR_SET_PDEATHSIG)
#include <sys/wait.h>   // waitpid
#include <unistd.h>     // fork, execvpe, pipe2

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>  // strerror, strsignal
#include <map>
#include <random>
#include <string>
#include <thread>  // hardware_concurrency
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// A line longer than this is passed on in pieces rather than held in memory.
constexpr size_t kLongestLine = 64 * 1024;

// The signal handlers only write the signal's number into this pipe; the loop reads it.
int signal_pipe[2] = {-1, -1};

void on_signal(int signal) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signal);
  (void)!write(signal_pipe[1], &byte, 1);
  errno = saved;
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // our own output is gone: nothing better to do
    done += size_t(n);
  }
}

// One stream (stdout or stderr) of one process: the pipe it writes into and the unfinished line.
struct Stream {
  int fd = -1;     // our end of the pipe; -1 once closed
  int target = 1;  // where its lines go: 1 (stdout) or 2 (stderr)
  std::string pending;
};

struct Process {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  Stream out, err;
};

// Passes on the whole lines in `stream.pending`, each prefixed; with `flush`, the rest too.
void emit_lines(Stream& stream, const std::string& prefix, bool flush) {
  size_t start = 0;
  while (true) {
    const size_t newline = stream.pending.find('\n', start);
    if (newline == std::string::npos) break;
    write_all(stream.target, prefix + stream.pending.substr(start, newline + 1 - start));
    start = newline + 1;
  }
  stream.pending.erase(0, start);
  if (!stream.pending.empty() && (flush || stream.pending.size() >= kLongestLine)) {
    write_all(stream.target, prefix + stream.pending + "\n");
    stream.pending.clear();
  }
}

// Reads what the pipe holds now; closes it at end of file.
void read_stream(Stream& stream, const std::string& prefix) {
  char buffer[16384];
  while (stream.fd >= 0) {
    const ssize_t n = read(stream.fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      emit_lines(stream, prefix, true);
      close(stream.fd);
      stream.fd = -1;
      return;
    }
    stream.pending.append(buffer, size_t(n));
    emit_lines(stream, prefix, false);
  }
}

// The program's path as execvp would find it, or "" when there is none.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end == start ? "." : dirs.substr(start, end - start);
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::string random_token() {
  std::random_device device;
  char text[33];
  for (int i = 0; i < 4; ++i) std::snprintf(text + 8 * i, 9, "%08x", unsigned(device()));
  return std::string(text, 32);
}

// The environment of one process: ours, with the rendezvous variables set.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& variables) {
  std::vector<std::string> out;
  for (char** entry = environ; *entry; ++entry) {
    const std::string text = *entry;
    const std::string name = text.substr(0, text.find('='));
    if (!variables.count(name)) out.push_back(text);
  }
  for (const auto& [name, value] : variables) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Starts one process with its stdout and stderr on pipes, in its own process group.
Process start(int rank, std::vector<std::string> command, std::vector<std::string> environment) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
  std::vector<char*> argv = pointers(command);
  std::vector<char*> envp = pointers(environment);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    setpgid(0, 0);
    // Ends with launch, even when launch is killed with SIGKILL.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execvpe(argv[0], argv.data(), envp.data());
    const char* reason = std::strerror(errno);
    write_all(2, std::string("launch: cannot run ") + argv[0] + ": " + reason + "\n");
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so that a signal sent right away reaches the group
  close(out_pipe[1]);
  close(err_pipe[1]);
  Process process;
  process.rank = rank;
  process.pid = pid;
  process.running = true;
  process.out = Stream{out_pipe[0], 1, {}};
  process.err = Stream{err_pipe[0], 2, {}};
  for (int fd : {process.out.fd, process.err.fd})
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return process;
}

void signal_all(std::vector<Process>& processes, int signal) {
  for (const auto& p : processes)
    if (p.running) kill(-p.pid, signal);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    return "was killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"launch: starts the processes of a distributed job on this node"};
  int nproc = 0, nnodes = 1, node_rank = 0, master_port = 29500;
  double grace_seconds = 5;
  std::string master_addr = "127.0.0.1";
  std::vector<std::string> command;
  app.add_option("--nproc", nproc, "processes on this node")
      ->required()
      ->check(CLI::Range(1, 1024));
  app.add_option("--nnodes", nnodes, "nodes in the job")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--node-rank", node_rank, "this node's rank, 0 .. nnodes-1")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--master-addr", master_addr, "the address of the node of rank 0")
      ->capture_default_str();
  app.add_option("--master-port", master_port, "the port of rank 0's store")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--grace-period", grace_seconds,
                 "seconds between SIGTERM and SIGKILL when stopping the processes")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("program", command, "PROGRAM ARGS... (after --)")->required();
  CLI11_PARSE(app, argc, argv);

  if (node_rank >= nnodes) {
    std::fprintf(stderr, "launch: --node-rank %d is not in 0..%d (--nnodes %d)\n", node_rank,
                 nnodes - 1, nnodes);
    return 2;
  }
  if (find_program(command[0]).empty()) {
    std::fprintf(stderr, "launch: program '%s' not found%s\n", command[0].c_str(),
                 command[0].find('/') == std::string::npos ? " in PATH" : " (or not executable)");
    return 2;
  }

  // Signals become bytes in a pipe, read by the loop below.
  if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::fprintf(stderr, "launch: cannot make a pipe: %s\n", std::strerror(errno));
    return 1;
  }
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  for (int signal : {SIGCHLD, SIGINT, SIGTERM}) sigaction(signal, &action, nullptr);

  std::map<std::string, std::string> variables{
      {"MASTER_ADDR", master_addr},
      {"MASTER_PORT", std::to_string(master_port)},
      {"WORLD_SIZE", std::to_string(nproc * nnodes)},
      {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
  };
  if (!std::getenv("EMBER_DIST_TOKEN") && nnodes == 1)
    variables["EMBER_DIST_TOKEN"] = random_token();
  // The node's cores are shared among its processes, unless OMP_NUM_THREADS says otherwise
  // (torchrun sets 1): N processes each running one OpenMP thread per core would oversubscribe.
  if (!std::getenv("OMP_NUM_THREADS")) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    variables["OMP_NUM_THREADS"] =
        std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc)));
  }

  std::vector<Process> processes;
  try {
    for (int i = 0; i < nproc; ++i) {
      variables["RANK"] = std::to_string(node_rank * nproc + i);
      variables["LOCAL_RANK"] = std::to_string(i);
      processes.push_back(start(node_rank * nproc + i, command, child_environment(variables)));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "launch: %s\n", e.what());
    signal_all(processes, SIGKILL);
    return 1;
  }

  int exit_code = 0;      // the first failure's code, or 128 + the signal passed on
  bool stopping = false;  // SIGTERM has been sent to every process
  Clock::time_point kill_at;
  bool killed = false;
  auto stop_all = [&](int signal) {
    if (!stopping) {
      stopping = true;
      kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(grace_seconds));
    }
    signal_all(processes, signal);
  };

  auto running = [&] {
    for (const auto& p : processes)
      if (p.running) return true;
    return false;
  };
  while (running()) {
    std::vector<pollfd> fds{{signal_pipe[0], POLLIN, 0}};
    for (auto& p : processes)
      for (Stream* s : {&p.out, &p.err})
        if (s->fd >= 0) fds.push_back({s->fd, POLLIN, 0});
    int timeout_ms = 500;
    if (stopping && !killed)
      timeout_ms = int(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count() +
                 1));
    poll(fds.data(), fds.size(), std::min(timeout_ms, 500));

    for (auto& p : processes) {
      const std::string prefix = "[rank " + std::to_string(p.rank) + "] ";
      read_stream(p.out, prefix);
      read_stream(p.err, prefix);
    }

    unsigned char signals[64];
    ssize_t n = 0;
    while ((n = read(signal_pipe[0], signals, sizeof(signals))) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (signals[i] == SIGINT || signals[i] == SIGTERM) {
          std::fprintf(stderr, "launch: got %s, passing it on to every process\n",
                       strsignal(signals[i]));
          if (exit_code == 0) exit_code = 128 + signals[i];
          stop_all(signals[i]);
        }
      }
    }

    // Reap the processes that ended.
    for (auto& p : processes) {
      if (!p.running) continue;
      // Looked at first without reaping, so that its process group cannot be a new process's
      // yet when whatever else is still in it (a shell's children) is stopped with it.
      siginfo_t info{};
      if (waitid(P_PID, id_t(p.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid != p.pid)
        continue;
      kill(-p.pid, SIGKILL);
      int status = 0;
      waitpid(p.pid, &status, 0);
      p.running = false;
      const int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
      if (code != 0 && !stopping) {
        exit_code = code;
        std::fprintf(stderr, "launch: rank %d %s; stopping the other ranks\n", p.rank,
                     describe(status).c_str());
        stop_all(SIGTERM);
      }
    }

    if (stopping && !killed && Clock::now() >= kill_at && running()) {
      std::fprintf(stderr, "launch: ranks still running after %.1f s, sending SIGKILL\n",
                   grace_seconds);
      signal_all(processes, SIGKILL);
      killed = true;
    }
  }

  // Every process has ended: pass on what their pipes still hold (not waiting for anything
  // they may have left running that still holds a pipe open).
  for (auto& p : processes) {
    const std::string prefix = "[rank " + std::to_string(p.rank) + "] ";
    for (Stream* s : {&p.out, &p.err}) {
      read_stream(*s, prefix);
      if (s->fd >= 0) {
        emit_lines(*s, prefix, true);
        close(s->fd);
      }
    }
  }
  return exit_code;
}
