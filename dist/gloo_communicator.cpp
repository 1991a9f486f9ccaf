// The Gloo backend of Communicator: every rank holds a gloo context (a TCP connection to every
// other rank) and one worker thread that runs the operations in the order they were started.
//
// How the pieces fit:
//   - Rendezvous: each rank first announces itself under "joined/<rank>" in the store, so that a
//     rank that never comes is named in a TimeoutError; then gloo's connectFullMesh exchanges the
//     listening addresses through an adapter from ember's Store to gloo's. Every communicator
//     lives under its own prefix of the store ("gloo/<n>" for the n-th world communicator a rank
//     makes, "<parent>/group<k>" for the k-th sub-group), so their keys never collide.
//   - After connecting, each rank publishes the local address of its socket to every peer
//     ("sockets/<rank>"). Gloo's errors name the remote socket ("Connection closed by peer
//     [127.0.0.1]:4711"); looking that address up turns it into the rank that went away.
//   - A send is posted by the worker, which moves on at once; a second thread waits for the
//     sends to complete. Otherwise two ranks that both send then receive (a neighbour exchange)
//     would each wait for the other's receive forever: a gloo send completes only once the peer
//     has posted the matching receive.
//   - When one gloo operation fails (a timeout closes every connection of the context, a closed
//     socket leaves the mesh incomplete), the communicator is broken: later operations are
//     refused with the first error.
//   - CUDA tensors are copied to pinned host memory when the operation is started (on the
//     calling thread, after the work queued on the device's stream) and copied back once the
//     collective is done.
#include "dist/gloo_communicator.h"

#include <gloo/allgather.h>
#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>
#include <gloo/types.h>
#include <unistd.h>  // gethostname

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdlib>  // getenv
#include <cstring>
#include <deque>
#include <functional>
#include <sstream>
#include <thread>

#include "engine/error.h"
#include "engine/runtime.h"  // allocate_pinned, runtime_for

namespace ember::dist {
namespace {

using Clock = std::chrono::steady_clock;

// The first byte of the slots of send/recv: distinct from the prefixes gloo's collectives use
// (gloo/types.h, 0x01..0x08), so a message never matches a collective's.
constexpr uint8_t kSendRecvSlotPrefix = 0x40;

std::string seconds_text(Milliseconds ms) {
  std::ostringstream out;
  out << static_cast<double>(ms.count()) / 1000.0 << " s";
  return out.str();
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string text = "[";
  for (size_t i = 0; i < ranks.size(); ++i) text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text + "]";
}

// gloo's messages begin with "[/path/file.cc:123] "; the reader wants the rest.
std::string without_source_location(const std::string& message) {
  if (!message.empty() && message[0] == '[') {
    const size_t end = message.find("] ");
    if (end != std::string::npos && message.find(".cc:") < end) return message.substr(end + 2);
  }
  return message;
}

// ember's Store seen as gloo's rendezvous store; every wait is bounded by `timeout`.
class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(std::shared_ptr<dist::Store> store, Milliseconds timeout)
      : store_(std::move(store)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    store_->set(key, Bytes(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    store_->wait({key}, timeout_);
    const Bytes value = store_->get(key);
    return std::vector<char>(value.begin(), value.end());
  }
  void wait(const std::vector<std::string>& keys) override { store_->wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override {
    store_->wait(keys, std::min<Milliseconds>(timeout, timeout_));
  }

 private:
  std::shared_ptr<dist::Store> store_;
  Milliseconds timeout_;
};

// The TCP device (a listening socket and an event loop thread). EMBER_GLOO_IFNAME (a network
// interface) or EMBER_GLOO_HOSTNAME choose the address peers reach; by default the host's
// name, or loopback when it does not resolve to an address this process can listen on.
std::shared_ptr<gloo::transport::Device> create_tcp_device() {
  gloo::transport::tcp::attr attr;
  if (const char* iface = std::getenv("EMBER_GLOO_IFNAME"); iface && *iface) {
    attr.iface = iface;
    return gloo::transport::tcp::CreateDevice(attr);
  }
  if (const char* host = std::getenv("EMBER_GLOO_HOSTNAME"); host && *host) {
    attr.hostname = host;
    return gloo::transport::tcp::CreateDevice(attr);
  }
  char hostname[256] = {};
  if (gethostname(hostname, sizeof(hostname) - 1) == 0 && hostname[0] != '\0') {
    try {
      attr.hostname = hostname;
      return gloo::transport::tcp::CreateDevice(attr);
    } catch (const std::exception&) {
      // falls back to loopback below
    }
  }
  attr.hostname = "127.0.0.1";
  return gloo::transport::tcp::CreateDevice(attr);
}

// A tensor's bytes as gloo sees them: the tensor's own memory on the CPU, a pinned host copy for
// a CUDA tensor (filled when the operation starts if `read`, copied back by finish() if
// `write`).
class HostView {
 public:
  HostView() = default;
  HostView(Tensor tensor, bool read, bool write) : tensor_(std::move(tensor)), write_(write) {
    bytes_ = static_cast<size_t>(tensor_.numel()) * tensor_.element_size();
    const Device device = tensor_.device();
    if (!device.is_cuda()) {
      data_ = tensor_.data_ptr();
      return;
    }
    pinned_ = allocate_pinned(device, bytes_);
    data_ = pinned_;
    // copy_bytes runs on the device's default stream, after the kernels that produced the data.
    if (read && bytes_ > 0)
      runtime_for(device).copy_bytes(device.index, kernels::CopyKind::DeviceToHost, pinned_,
                                     tensor_.data_ptr(), bytes_);
  }
  ~HostView() {
    if (pinned_) free_pinned(tensor_.device(), pinned_);
  }
  HostView(const HostView&) = delete;
  HostView& operator=(const HostView&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // Writes the result back into a CUDA tensor (nothing to do on the CPU).
  void finish() {
    if (!pinned_ || !write_ || bytes_ == 0) return;
    const Device device = tensor_.device();
    runtime_for(device).set_device(device.index);  // this runs on the worker thread
    runtime_for(device).copy_bytes(device.index, kernels::CopyKind::HostToDevice,
                                   tensor_.data_ptr(), pinned_, bytes_);
  }

 private:
  Tensor tensor_;
  void* data_ = nullptr;
  void* pinned_ = nullptr;
  bool write_ = false;
  size_t bytes_ = 0;
};

// One started operation: what the worker runs, and its completion.
struct Operation {
  std::string name;        // "all_reduce", ...
  std::vector<int> peers;  // the group ranks it waits on (for messages)
  Clock::time_point started = Clock::now();
  std::function<void()> run;  // on the worker thread
  // For a send: posted by run(), completed by the send thread with this.
  std::unique_ptr<gloo::transport::UnboundBuffer> pending_send;
  Clock::time_point posted;  // when the worker posted the send: its deadline counts from here
  std::vector<std::shared_ptr<HostView>> views;  // keeps tensors (and pinned copies) alive

  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::exception_ptr error;

  void complete(std::exception_ptr failure) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      done = true;
      error = failure;
      pending_send.reset();
      views.clear();
      run = nullptr;  // its captures hold the tensors too
    }
    finished.notify_all();
  }
};

class GlooWork : public Work {
 public:
  explicit GlooWork(std::shared_ptr<Operation> op) : op_(std::move(op)) {}
  bool is_completed() override {
    std::lock_guard<std::mutex> lock(op_->mutex);
    return op_->done;
  }
  void wait() override {
    std::unique_lock<std::mutex> lock(op_->mutex);
    op_->finished.wait(lock, [&] { return op_->done; });
    if (op_->error) std::rethrow_exception(op_->error);
  }

 private:
  std::shared_ptr<Operation> op_;
};

template <typename T>
void divide_in_place(void* data, size_t count, int divisor) {
  T* values = static_cast<T*>(data);
  for (size_t i = 0; i < count; ++i) values[i] = static_cast<T>(values[i] / divisor);
}

template <typename T>
gloo::AllreduceOptions::Func reduce_function(ReduceOp op) {
  using Fn = void (*)(void*, const void*, const void*, size_t);
  switch (op) {
    case ReduceOp::Max:
      return static_cast<Fn>(&gloo::max<T>);
    case ReduceOp::Min:
      return static_cast<Fn>(&gloo::min<T>);
    case ReduceOp::Sum:
    case ReduceOp::Average:
      break;
  }
  return static_cast<Fn>(&gloo::sum<T>);
}

// In place: every rank's `count` elements at `data` become the reduction over all ranks.
template <typename T>
void all_reduce_typed(const std::shared_ptr<gloo::Context>& context, void* data, size_t count,
                      ReduceOp op, Milliseconds timeout) {
  gloo::AllreduceOptions options(context);
  options.setOutput(static_cast<T*>(data), count);
  options.setReduceFunction(reduce_function<T>(op));
  options.setTimeout(timeout);
  gloo::allreduce(options);
  // Integers divide as C++ does, toward zero.
  if (op == ReduceOp::Average) divide_in_place<T>(data, count, context->size);
}

void all_reduce_bytes(const std::shared_ptr<gloo::Context>& context, DType dtype, void* data,
                      size_t count, ReduceOp op, Milliseconds timeout) {
  switch (dtype) {
    case DType::F32:
      return all_reduce_typed<float>(context, data, count, op, timeout);
    case DType::F64:
      return all_reduce_typed<double>(context, data, count, op, timeout);
    case DType::I32:
      return all_reduce_typed<int32_t>(context, data, count, op, timeout);
    case DType::I64:
      return all_reduce_typed<int64_t>(context, data, count, op, timeout);
    default:
      throw Error(str_cat("gloo all_reduce: dtype ", dtype_name(dtype), " is not supported"));
  }
}

// What every communicator of one rank shares with its worker threads. It outlives the
// Communicator object when a destroyed communicator's worker is still inside a gloo call (a
// peer that stopped answering): the worker finishes at the operation's deadline, alone.
struct GlooState {
  std::shared_ptr<dist::Store> store;  // this communicator's namespace
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  int rank = 0;
  int size = 0;
  std::vector<int> world_ranks;
  Milliseconds timeout{0};

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::shared_ptr<Operation>> queue;  // started, not yet run
  std::deque<std::shared_ptr<Operation>> sends;  // posted, not yet complete
  bool stopping = false;
  int threads_running = 0;
  std::condition_variable threads_done;
  std::string failure;  // the first error; set once the communicator is broken
  // Called with an operation's seconds when it completes; cleared when the communicator goes.
  std::function<void(double)> on_completed;

  std::string who() const {
    return str_cat("rank ", rank, " (world rank ", world_ranks[rank], ")");
  }

  std::vector<int> world_ranks_of(const std::vector<int>& group_ranks) const {
    std::vector<int> out;
    for (int r : group_ranks) out.push_back(world_ranks[r]);
    return out;
  }

  // The world rank whose socket has `address` ("[127.0.0.1]:4711"), or -1.
  int world_rank_of_address(const std::string& address) {
    for (int r = 0; r < size; ++r) {
      if (r == rank) continue;
      const std::string key = "sockets/" + std::to_string(r);
      try {
        if (!store->check({key})) continue;
        const std::string sockets = to_string(store->get(key));
        std::istringstream lines(sockets);
        for (std::string line; std::getline(lines, line);)
          if (!line.empty() && line == address) return world_ranks[r];
      } catch (const std::exception&) {
        return -1;  // the store is gone too: say what gloo said
      }
    }
    return -1;
  }

  // The error an operation's failure becomes: it names the op, this rank, and the peer.
  std::exception_ptr describe_failure(const Operation& op, const std::string& gloo_message) {
    const std::string what = without_source_location(gloo_message);
    const std::string peers = op.peers.size() == 1
                                  ? str_cat("world rank ", world_ranks[op.peers[0]])
                                  : str_cat("world ranks ", rank_list(world_ranks_of(op.peers)));
    if (what.find("Timed out") != std::string::npos || what.find("timeout") != std::string::npos) {
      return std::make_exception_ptr(
          TimeoutError(str_cat("gloo ", op.name, " on ", who(), ": no answer from ", peers,
                               " within ", seconds_text(timeout), " (", what, ")")));
    }
    // "Connection closed by peer [127.0.0.1]:4711", "Read error [127.0.0.1]:4711: ..."
    std::string culprit;
    const size_t open = what.find('[');
    const size_t close = what.find(']', open);
    if (open != std::string::npos && close != std::string::npos) {
      size_t stop = close + 1;  // past the port, if one follows
      if (stop < what.size() && what[stop] == ':') {
        ++stop;
        while (stop < what.size() && std::isdigit(static_cast<unsigned char>(what[stop]))) ++stop;
      }
      const int peer = world_rank_of_address(what.substr(open, stop - open));
      if (peer >= 0) culprit = str_cat("world rank ", peer, " went away");
    }
    if (culprit.empty()) culprit = str_cat("lost its connection with ", peers);
    return std::make_exception_ptr(
        Error(str_cat("gloo ", op.name, " on ", who(), ": ", culprit, " (", what, ")")));
  }

  void fail_everything_after(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (failure.empty()) failure = message;
  }

  void report_completed(const Operation& op) {
    const double seconds = std::chrono::duration<double>(Clock::now() - op.started).count();
    std::lock_guard<std::mutex> lock(mutex);
    if (on_completed) on_completed(seconds);
  }

  void finish(Operation& op, std::exception_ptr error) {
    if (!error) report_completed(op);
    op.complete(error);
  }

  // Runs `op` (on the worker); a send is handed to the send thread once posted.
  void run(const std::shared_ptr<Operation>& op) {
    std::string broken;
    {
      std::lock_guard<std::mutex> lock(mutex);
      broken = failure;
    }
    if (!broken.empty()) {
      op->complete(std::make_exception_ptr(
          Error(str_cat("gloo ", op->name, " on ", who(),
                        ": not run, an earlier operation of this communicator failed: ", broken))));
      return;
    }
    std::exception_ptr error;
    try {
      op->run();
      for (auto& view : op->views) view->finish();
    } catch (const TimeoutError&) {
      error = std::current_exception();
    } catch (const std::exception& e) {
      error = describe_failure(*op, e.what());
    } catch (...) {
      error = describe_failure(*op, "unknown exception");
    }
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        fail_everything_after(e.what());
      }
      op->complete(error);
      return;
    }
    if (op->pending_send) {
      std::lock_guard<std::mutex> lock(mutex);
      sends.push_back(op);
      changed.notify_all();
      return;
    }
    finish(*op, nullptr);
  }

  void worker_loop() {
    for (;;) {
      std::shared_ptr<Operation> op;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) break;
        op = queue.front();
        queue.pop_front();
      }
      run(op);
    }
    thread_exited();
  }

  // Waits for posted sends to complete, in the order they were posted.
  void send_loop() {
    for (;;) {
      std::shared_ptr<Operation> op;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stopping || !sends.empty(); });
        if (sends.empty()) break;  // stopping, and no posted send left to wait for
        op = sends.front();
      }
      std::exception_ptr error;
      try {
        const auto deadline = op->posted + timeout;
        const auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now());
        op->pending_send->waitSend(std::max(left, Milliseconds(1)));
      } catch (const std::exception& e) {
        error = describe_failure(*op, e.what());
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& described) {
          fail_everything_after(described.what());
        }
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (!sends.empty() && sends.front() == op) sends.pop_front();
      }
      finish(*op, error);
    }
    thread_exited();
  }

  void thread_exited() {
    std::lock_guard<std::mutex> lock(mutex);
    --threads_running;
    threads_done.notify_all();
  }
};

class GlooCommunicator : public Communicator {
 public:
  GlooCommunicator(std::shared_ptr<GlooState> state, CommunicatorOptions options,
                   std::string prefix)
      : Communicator(options), state_(std::move(state)), prefix_(std::move(prefix)) {
    state_->on_completed = [this](double seconds) { count_completed(seconds); };
    state_->threads_running = 2;
    auto state_for_threads = state_;
    worker_ = std::thread([state_for_threads] { state_for_threads->worker_loop(); });
    sender_ = std::thread([state_for_threads] { state_for_threads->send_loop(); });
  }

  // Returns promptly: operations not yet run fail; one inside a gloo call is given a moment,
  // then left to end at its own deadline (its thread holds everything it uses).
  ~GlooCommunicator() override {
    std::deque<std::shared_ptr<Operation>> abandoned;
    bool finished = false;
    {
      std::unique_lock<std::mutex> lock(state_->mutex);
      state_->on_completed = nullptr;
      state_->stopping = true;
      abandoned.swap(state_->queue);
      state_->changed.notify_all();
      finished = state_->threads_done.wait_for(lock, std::chrono::milliseconds(200),
                                               [&] { return state_->threads_running == 0; });
    }
    if (finished) {
      worker_.join();
      sender_.join();
    } else {
      worker_.detach();
      sender_.detach();
    }
    for (auto& op : abandoned)
      op->complete(std::make_exception_ptr(Error(str_cat(
          "gloo ", op->name, " on ", state_->who(), ": the communicator was destroyed first"))));
  }

  int rank() const override { return state_->rank; }
  int size() const override { return state_->size; }
  std::string backend() const override { return "gloo"; }
  const std::vector<int>& world_ranks() const override { return state_->world_ranks; }

  WorkHandle all_reduce(Tensor tensor, ReduceOp op) override {
    check_tensor("all_reduce", tensor, "tensor");
    auto operation = make_operation("all_reduce", tensor, all_other_ranks());
    auto view = stage(*operation, tensor, true, true);
    const DType dtype = tensor.dtype();
    const size_t count = static_cast<size_t>(tensor.numel());
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (count > 0) all_reduce_bytes(context, dtype, view->data(), count, op, timeout);
    };
    return start(operation);
  }

  WorkHandle broadcast(Tensor tensor, int root) override {
    check_tensor("broadcast", tensor, "tensor");
    check_rank("broadcast", "root", root, true);
    std::vector<int> peers = {root};
    if (root == rank()) peers = all_other_ranks();
    auto operation = make_operation("broadcast", tensor, peers);
    auto view = stage(*operation, tensor, rank() == root, rank() != root);
    const size_t count = static_cast<size_t>(tensor.numel());
    const size_t element = tensor.element_size();
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (count == 0 || context->size == 1) return;
      // Gloo moves bytes here: no arithmetic, so the element type does not matter.
      gloo::BroadcastOptions options(context);
      options.setOutput(static_cast<uint8_t*>(view->data()), count * element);
      options.setRoot(root);
      options.setTimeout(timeout);
      gloo::broadcast(options);
    };
    return start(operation);
  }

  WorkHandle all_gather(Tensor input, Tensor output) override {
    check_tensor("all_gather", input, "input");
    check_tensor("all_gather", output, "output");
    check_same_kind("all_gather", input, output);
    EMBER_CHECK(output.numel() == input.numel() * size(), "gloo all_gather on ", state_->who(),
                ": output has ", output.numel(),
                " elements, expected size() * input.numel() = ", size(), " * ", input.numel(),
                " = ", input.numel() * size());
    auto operation = make_operation("all_gather", input, all_other_ranks());
    auto in = stage(*operation, input, true, false);
    auto out = stage(*operation, output, false, true);
    const size_t in_bytes = in->bytes();
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (in_bytes == 0) return;
      if (context->size == 1) {
        std::memcpy(out->data(), in->data(), in_bytes);
        return;
      }
      gloo::AllgatherOptions options(context);
      options.setInput(static_cast<uint8_t*>(in->data()), in_bytes);
      options.setOutput(static_cast<uint8_t*>(out->data()), out->bytes());
      options.setTimeout(timeout);
      gloo::allgather(options);
    };
    return start(operation);
  }

  WorkHandle all_gather_v(Tensor input, Tensor output, std::vector<int64_t> counts) override {
    check_tensor("all_gather_v", input, "input");
    check_tensor("all_gather_v", output, "output");
    check_same_kind("all_gather_v", input, output);
    EMBER_CHECK(static_cast<int>(counts.size()) == size(), "gloo all_gather_v on ", state_->who(),
                ": ", counts.size(), " counts given, expected one per rank (", size(), ")");
    int64_t total = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      EMBER_CHECK(counts[r] >= 0, "gloo all_gather_v on ", state_->who(), ": counts[", r,
                  "] = ", counts[r], " is negative");
      total += counts[r];
    }
    EMBER_CHECK(counts[rank()] == input.numel(), "gloo all_gather_v on ", state_->who(),
                ": counts[", rank(), "] = ", counts[rank()], " but the input has ", input.numel(),
                " elements");
    EMBER_CHECK(output.numel() == total, "gloo all_gather_v on ", state_->who(), ": output has ",
                output.numel(), " elements, expected the sum of counts, ", total);
    auto operation = make_operation("all_gather_v", input, all_other_ranks());
    auto in = stage(*operation, input, true, false);
    auto out = stage(*operation, output, false, true);
    const size_t element = input.element_size();
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (total == 0) return;
      if (context->size == 1) {
        std::memcpy(out->data(), in->data(), in->bytes());
        return;
      }
      // Counted in bytes: gloo only moves them.
      std::vector<size_t> byte_counts;
      for (int64_t count : counts) byte_counts.push_back(static_cast<size_t>(count) * element);
      gloo::AllgathervOptions options(context);
      options.setInput(static_cast<uint8_t*>(in->data()), in->bytes());
      options.setOutput(static_cast<uint8_t*>(out->data()), byte_counts);
      options.setTimeout(timeout);
      gloo::allgatherv(options);
    };
    return start(operation);
  }

  WorkHandle reduce_scatter(Tensor input, Tensor output, ReduceOp op) override {
    check_tensor("reduce_scatter", input, "input");
    check_tensor("reduce_scatter", output, "output");
    check_same_kind("reduce_scatter", input, output);
    EMBER_CHECK(input.numel() == output.numel() * size(), "gloo reduce_scatter on ", state_->who(),
                ": input has ", input.numel(),
                " elements, expected size() * output.numel() = ", size(), " * ", output.numel(),
                " = ", output.numel() * size());
    auto operation = make_operation("reduce_scatter", input, all_other_ranks());
    auto in = stage(*operation, input, true, false);
    auto out = stage(*operation, output, false, true);
    const DType dtype = input.dtype();
    const size_t count = static_cast<size_t>(input.numel());
    const int my_rank = rank();
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (count == 0) return;
      // Gloo 2022 has no reduce-scatter for unbound buffers: all-reduce a copy, keep block r.
      std::vector<uint8_t> scratch(in->bytes());
      std::memcpy(scratch.data(), in->data(), scratch.size());
      all_reduce_bytes(context, dtype, scratch.data(), count, op, timeout);
      std::memcpy(out->data(), scratch.data() + my_rank * out->bytes(), out->bytes());
    };
    return start(operation);
  }

  WorkHandle send(Tensor tensor, int dst, int tag) override {
    check_tensor("send", tensor, "tensor");
    check_rank("send", "dst", dst, false);
    check_tag("send", tag);
    auto operation = make_operation("send", tensor, {dst});
    auto view = stage(*operation, tensor, true, false);
    auto context = state_->context;
    Operation* raw = operation.get();
    operation->run = [=] {
      raw->pending_send = context->createUnboundBuffer(view->data(), view->bytes());
      raw->pending_send->send(dst, slot_of(tag));
      raw->posted = Clock::now();
    };
    return start(operation);
  }

  WorkHandle recv(Tensor tensor, int src, int tag) override {
    check_tensor("recv", tensor, "tensor");
    check_rank("recv", "src", src, false);
    check_tag("recv", tag);
    auto operation = make_operation("recv", tensor, {src});
    auto view = stage(*operation, tensor, false, true);
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      auto buffer = context->createUnboundBuffer(view->data(), view->bytes());
      buffer->recv(src, slot_of(tag));
      buffer->waitRecv(timeout);
    };
    return start(operation);
  }

  WorkHandle barrier() override {
    auto operation = make_operation("barrier", Tensor(), all_other_ranks());
    auto context = state_->context;
    const Milliseconds timeout = state_->timeout;
    operation->run = [=] {
      if (context->size == 1) return;
      gloo::BarrierOptions options(context);
      options.setTimeout(timeout);
      gloo::barrier(options);
    };
    return start(operation);
  }

  std::shared_ptr<Communicator> new_group(const std::vector<int>& ranks) override;

 private:
  static uint64_t slot_of(int tag) {
    return gloo::Slot::build(kSendRecvSlotPrefix, static_cast<uint32_t>(tag));
  }

  std::vector<int> all_other_ranks() const {
    std::vector<int> peers;
    for (int r = 0; r < size(); ++r)
      if (r != rank()) peers.push_back(r);
    return peers;
  }

  void check_tensor(const char* op, const Tensor& tensor, const char* what) const {
    EMBER_CHECK(tensor.defined(), "gloo ", op, " on ", state_->who(), ": the ", what,
                " is an undefined tensor");
    const DType dtype = tensor.dtype();
    EMBER_CHECK(
        dtype == DType::F32 || dtype == DType::F64 || dtype == DType::I32 || dtype == DType::I64,
        "gloo ", op, " on ", state_->who(), ": the ", what, " has dtype ", dtype_name(dtype),
        "; supported are f32, f64, i32 and i64");
    EMBER_CHECK(tensor.is_contiguous(), "gloo ", op, " on ", state_->who(), ": the ", what,
                " of shape ", shape_str(tensor.shape()),
                " is not contiguous (call .contiguous() first)");
  }

  void check_same_kind(const char* op, const Tensor& input, const Tensor& output) const {
    EMBER_CHECK(input.dtype() == output.dtype(), "gloo ", op, " on ", state_->who(), ": input is ",
                dtype_name(input.dtype()), " but output is ", dtype_name(output.dtype()));
    EMBER_CHECK(input.device() == output.device(), "gloo ", op, " on ", state_->who(),
                ": input is on ", input.device(), " but output is on ", output.device());
  }

  void check_rank(const char* op, const char* what, int peer, bool self_allowed) const {
    EMBER_CHECK(peer >= 0 && peer < size(), "gloo ", op, " on ", state_->who(), ": ", what, " ",
                peer, " is outside this group of ", size(), " ranks");
    EMBER_CHECK(self_allowed || peer != rank(), "gloo ", op, " on ", state_->who(), ": ", what, " ",
                peer, " is this rank itself");
  }

  void check_tag(const char* op, int tag) const {
    EMBER_CHECK(tag >= 0, "gloo ", op, " on ", state_->who(), ": tag ", tag, " is negative");
  }

  std::shared_ptr<Operation> make_operation(const std::string& name, const Tensor& payload,
                                            std::vector<int> peers) {
    std::string broken;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      broken = state_->failure;
    }
    EMBER_CHECK(broken.empty(), "gloo ", name, " on ", state_->who(),
                ": this communicator is broken by an earlier failure and refuses further "
                "operations (",
                broken, ")");
    auto op = std::make_shared<Operation>();
    op->name = name;
    op->peers = std::move(peers);
    const int64_t bytes =
        payload.defined() ? payload.numel() * static_cast<int64_t>(payload.element_size()) : 0;
    count_started(name, bytes);
    op->started = Clock::now();
    return op;
  }

  // The tensor's bytes for gloo: `read` if the operation reads its values, `write` if it writes
  // a result into it.
  std::shared_ptr<HostView> stage(Operation& op, const Tensor& tensor, bool read, bool write) {
    auto view = std::make_shared<HostView>(tensor, read, write);
    op.views.push_back(view);
    return view;
  }

  WorkHandle start(const std::shared_ptr<Operation>& op) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->queue.push_back(op);
    }
    state_->changed.notify_all();
    return std::make_shared<GlooWork>(op);
  }

  std::shared_ptr<GlooState> state_;
  std::thread worker_;  // runs the operations
  std::thread sender_;  // waits for posted sends to complete
  std::string prefix_;  // this communicator's keys in the world's store
  int groups_created_ = 0;
};

// Connects `size` ranks of a context whose keys live in `store` (already prefixed).
std::shared_ptr<GlooState> connect(std::shared_ptr<dist::Store> store,
                                   std::shared_ptr<gloo::transport::Device> device, int rank,
                                   int size, std::vector<int> world_ranks, Milliseconds timeout) {
  auto state = std::make_shared<GlooState>();
  state->store = store;
  state->device = std::move(device);
  state->rank = rank;
  state->size = size;
  state->world_ranks = std::move(world_ranks);
  state->timeout = timeout;
  const auto deadline = Clock::now() + timeout;

  // Everyone announces itself first, so that a rank that never comes is named.
  store->set("joined/" + std::to_string(rank), to_bytes("1"));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back("joined/" + std::to_string(r));
  try {
    store->wait(keys, timeout);
  } catch (const Error&) {
    std::vector<int> missing;
    for (int r = 0; r < size; ++r)
      if (!store->check({keys[r]})) missing.push_back(state->world_ranks[r]);
    if (missing.empty()) throw;
    const std::string who_missing =
        missing.size() == 1 ? str_cat("world rank ", missing[0], " did not come")
                            : str_cat("world ranks ", rank_list(missing), " did not come");
    throw TimeoutError(str_cat("gloo: world rank ", state->world_ranks[rank], " waited ",
                               seconds_text(timeout), " for the other ranks to join; ",
                               who_missing));
  }

  const auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now());
  const Milliseconds remaining = std::max(left, Milliseconds(1));
  state->context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  state->context->setTimeout(remaining);
  try {
    GlooStoreAdapter adapter(store, remaining);
    state->context->connectFullMesh(adapter, state->device);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(str_cat("gloo: world rank ", state->world_ranks[rank],
                        " could not connect to the other ranks of a group of ", size, ": ",
                        without_source_location(e.what())));
  }
  state->context->setTimeout(timeout);

  // The local address of each socket, so that a peer's error can be traced back to this rank.
  std::string sockets;
  for (int r = 0; r < size; ++r)
    if (r != rank) sockets += state->context->getPair(r)->address().str() + "\n";
  store->set("sockets/" + std::to_string(rank), to_bytes(sockets));
  return state;
}

std::shared_ptr<Communicator> GlooCommunicator::new_group(const std::vector<int>& ranks) {
  EMBER_CHECK(!ranks.empty(), "gloo new_group on ", state_->who(), ": the list of ranks is empty");
  std::vector<int> sorted = ranks;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    EMBER_CHECK(sorted[i] >= 0 && sorted[i] < size(), "gloo new_group on ", state_->who(),
                ": rank ", sorted[i], " is outside this group of ", size(), " ranks");
    EMBER_CHECK(i == 0 || sorted[i] != sorted[i - 1], "gloo new_group on ", state_->who(),
                ": rank ", sorted[i], " is listed twice");
  }
  // Every rank of this communicator calls new_group in the same order, so the counter agrees.
  const std::string prefix = prefix_ + "/group" + std::to_string(groups_created_++);
  const auto member = std::find(ranks.begin(), ranks.end(), rank());
  if (member == ranks.end()) return nullptr;
  std::vector<int> world;
  for (int r : ranks) world.push_back(state_->world_ranks[r]);
  // The parent's store is already prefixed; the group's keys go under a fresh name inside it.
  auto store =
      std::make_shared<PrefixStore>("group" + std::to_string(groups_created_ - 1), state_->store);
  auto state = connect(store, state_->device, static_cast<int>(member - ranks.begin()),
                       static_cast<int>(ranks.size()), std::move(world), state_->timeout);
  return std::make_shared<GlooCommunicator>(std::move(state), options(), prefix);
}

}  // namespace

std::shared_ptr<Communicator> make_gloo_communicator(std::shared_ptr<Store> store, int rank,
                                                     int size, CommunicatorOptions options) {
  EMBER_CHECK(store != nullptr, "gloo: no store given");
  EMBER_CHECK(size >= 1 && rank >= 0 && rank < size, "gloo: rank ", rank,
              " is outside a world of size ", size);
  EMBER_CHECK(options.timeout.count() > 0, "gloo: the timeout must be positive, got ",
              options.timeout.count(), " ms");
  // The n-th world communicator this rank makes on this store: every rank makes them in the
  // same order, so they agree on n.
  const int64_t serial = store->add("gloo/communicators_made_by_rank_" + std::to_string(rank), 1);
  const std::string prefix = "gloo/" + std::to_string(serial);
  auto prefixed = std::make_shared<PrefixStore>(prefix, store);
  std::vector<int> world(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) world[r] = r;
  std::shared_ptr<gloo::transport::Device> device;
  try {
    device = create_tcp_device();
  } catch (const std::exception& e) {
    throw Error(str_cat("gloo: rank ", rank, " could not open a TCP listening socket: ",
                        without_source_location(e.what()),
                        " (set EMBER_GLOO_IFNAME or EMBER_GLOO_HOSTNAME)"));
  }
  auto state = connect(prefixed, std::move(device), rank, size, std::move(world), options.timeout);
  return std::make_shared<GlooCommunicator>(std::move(state), options, prefix);
}

}  // namespace ember::dist
