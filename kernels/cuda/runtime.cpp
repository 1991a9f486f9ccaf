// The CUDA device runtime (devices, memory, copies, streams) and the CUDA KernelTable: the two
// tables the engine registers for DeviceType::CUDA.
//
// Each device gets one stream and one caching allocator, created on first use and never
// destroyed (tensors may outlive static destructors). Everything a kernel does runs on that
// stream, in order, so the host never waits except where it must read a result: copies to or
// from host memory, synchronize(), empty_cache(). The one exception is the DataLoader, which
// copies batches from pinned memory on a stream of its own and orders it against the default
// stream with events (the last section).
//
// The current device: the engine calls set_device(i) before it launches kernels for device i,
// and kernels use whatever device is current. Runtime functions that take a device argument
// switch to it themselves (DeviceGuard) and switch back, so that they never move the caller's
// kernels to another device. A thread_local cache of the current device spares the
// cudaSetDevice calls when nothing changes, which is nearly always.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>  // memcpy
#include <memory>   // unique_ptr
#include <mutex>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"   // CachingAllocator
#include "engine/error.h"               // Error, str_cat
#include "kernels/cuda/check.h"         // EMBER_CUDA_CHECK
#include "kernels/cuda/cuda_kernels.h"  // declarations

namespace ember::cuda {

namespace {

// ---- devices --------------------------------------------------------------------------------

struct Availability {
  int count = 0;
  std::string reason;  // why count is 0
};

// Asked once: any error means "no usable device", never an exception. (Without a driver,
// cudaGetDeviceCount fails with cudaErrorInsufficientDriver and leaves its argument unset.)
const Availability& availability() {
  static const Availability answer = [] {
    Availability a;
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      cudaGetLastError();  // leave no error behind for a later check to report
      if (status == cudaErrorInsufficientDriver)
        a.reason = str_cat("no CUDA driver (", cudaGetErrorString(status), ")");
      else if (status == cudaErrorNoDevice)
        a.reason = "no CUDA device";
      else
        a.reason = str_cat("CUDA unavailable (", cudaGetErrorName(status), ": ",
                           cudaGetErrorString(status), ")");
    } else if (count == 0) {
      a.reason = "no CUDA device";
    } else {
      a.count = count;
    }
    return a;
  }();  // a function-local static is initialized once, thread-safely
  return answer;
}

int device_count() {
  return availability().count;
}
const char* unavailable_reason() {
  return availability().reason.c_str();
}

void check_device(int device) {
  if (device >= 0 && device < device_count()) return;
  if (device_count() == 0) throw Error(str_cat("cuda:", device, ": ", unavailable_reason()));
  throw Error(str_cat("cuda:", device, " does not exist: this machine has ", device_count(),
                      " CUDA device(s)"));
}

// The calling thread's current device as last set through this file; -1 until first asked.
thread_local int current_device = -1;

int get_current_device() {
  if (current_device < 0) {
    int device = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    current_device = device;
  }
  return current_device;
}

void set_device(int device) {
  if (get_current_device() == device) return;
  EMBER_CUDA_CHECK(cudaSetDevice(device));
  current_device = device;
}

// Makes `device` current for the lifetime of the guard, then restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : previous_(get_current_device()) { set_device(device); }
  ~DeviceGuard() {
    if (current_device != previous_ && cudaSetDevice(previous_) == cudaSuccess)
      current_device = previous_;
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

// A device attribute, or 0 when the device does not say.
int device_attribute(cudaDeviceAttr attribute, int device) {
  int value = 0;
  if (cudaDeviceGetAttribute(&value, attribute, device) != cudaSuccess) {
    cudaGetLastError();  // leave no error behind
    value = 0;
  }
  return value;
}

DeviceProperties properties(int device) {
  check_device(device);
  cudaDeviceProp prop{};
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceProperties p;
  static_assert(sizeof(p.name) <= sizeof(prop.name), "both are char[256]");
  std::memcpy(p.name, prop.name, sizeof(p.name) - 1);  // p.name's last byte stays '\0'
  p.compute_capability = prop.major * 10 + prop.minor;
  p.multiprocessors = prop.multiProcessorCount;
  p.total_memory = static_cast<int64_t>(prop.totalGlobalMem);
  // CUDA 13 removed cudaDeviceProp::clockRate and memoryClockRate; the attributes remain.
  p.clock_khz = device_attribute(cudaDevAttrClockRate, device);
  // Peak bandwidth = 2 (double data rate) * memory clock * bus width in bytes.
  const int memory_clock_khz = device_attribute(cudaDevAttrMemoryClockRate, device);
  const int bus_width_bits = device_attribute(cudaDevAttrGlobalMemoryBusWidth, device);
  p.peak_bandwidth_gbs = 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) / 1e9;
  return p;
}

// ---- per-device state: stream and allocator --------------------------------------------------

struct DeviceState {
  explicit DeviceState(int device)
      : allocator(
            str_cat("cuda:", device),
            [device](size_t bytes) -> void* {
              DeviceGuard guard(device);
              void* ptr = nullptr;
              const cudaError_t status = cudaMalloc(&ptr, bytes);
              if (status == cudaErrorMemoryAllocation) {
                cudaGetLastError();  // clear it; the allocator frees its cache and retries
                return nullptr;
              }
              check_cuda(status, "cudaMalloc(&ptr, bytes)", __FILE__, __LINE__);
              return ptr;
            },
            [device](void* ptr) {
              DeviceGuard guard(device);
              EMBER_CUDA_CHECK(cudaFree(ptr));
            }) {}

  CachingAllocator allocator;
  std::mutex stream_mutex;                    // guards the creation of the stream
  std::atomic<cudaStream_t> stream{nullptr};  // created on first use
};

DeviceState& device_state(int device) {
  // One entry per device, made on first use and never destroyed.
  static std::vector<std::unique_ptr<DeviceState>>* states = [] {
    auto* v = new std::vector<std::unique_ptr<DeviceState>>();
    for (int d = 0; d < device_count(); ++d) v->push_back(std::make_unique<DeviceState>(d));
    return v;
  }();
  check_device(device);
  return *(*states)[device];
}

cudaStream_t device_stream(int device) {
  DeviceState& state = device_state(device);
  cudaStream_t stream = state.stream.load(std::memory_order_acquire);
  if (stream) return stream;
  std::lock_guard<std::mutex> lock(state.stream_mutex);
  stream = state.stream.load(std::memory_order_relaxed);
  if (!stream) {
    DeviceGuard guard(device);  // a stream belongs to the device current at its creation
    // Non-blocking: no implicit synchronization with the legacy default stream.
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    state.stream.store(stream, std::memory_order_release);
  }
  return stream;
}

Stream stream(int device) {
  return device_stream(device);
}

void synchronize(int device) {
  cudaStream_t s = device_stream(device);
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
}

// ---- memory ---------------------------------------------------------------------------------

void* allocate(int device, size_t bytes) {
  return device_state(device).allocator.allocate(bytes);
}
void deallocate(int device, void* ptr) {
  device_state(device).allocator.deallocate(ptr);
}
MemoryStats memory_stats(int device) {
  return device_state(device).allocator.stats();
}
void reset_peak(int device) {
  device_state(device).allocator.reset_peak();
}

void empty_cache(int device) {
  DeviceState& state = device_state(device);
  {
    DeviceGuard guard(device);
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());  // no kernel may still use a cached block
  }
  state.allocator.empty_cache();
}

void copy_bytes(int device, CopyKind kind, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = device_stream(device);
  DeviceGuard guard(device);
  const cudaMemcpyKind direction = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                                   : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                                    : cudaMemcpyDeviceToDevice;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, direction, s));
  // Host memory may be pageable and freed as soon as we return: wait for the copy.
  if (kind != CopyKind::DeviceToDevice) EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
}

// ---- asynchronous copies: pinned memory, extra streams, events ------------------------------
// The DataLoader's copy path: a worker fills pinned host memory, a copy queued on a stream of
// its own moves it to the device while the default stream computes, and an event tells the
// default stream when the batch has arrived. Destroy and free functions swallow errors (they
// run in destructors, perhaps at exit when the driver is shutting down) rather than throw.

using Event = DeviceRuntime::Event;

void* allocate_pinned(int device, size_t bytes) {
  if (bytes == 0) return nullptr;
  DeviceGuard guard(device);
  void* ptr = nullptr;
  // Portable: pinned for every device, not just the current one.
  EMBER_CUDA_CHECK(cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable));
  return ptr;
}
void free_pinned(int, void* ptr) {
  if (ptr && cudaFreeHost(ptr) != cudaSuccess) cudaGetLastError();
}

Stream create_stream(int device) {
  DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void destroy_stream(int, Stream s) {
  if (s && cudaStreamDestroy(static_cast<cudaStream_t>(s)) != cudaSuccess) cudaGetLastError();
}

void copy_to_device_async(int device, void* dst, const void* src, size_t bytes, Stream s) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(s)));
}

Event create_event(int device) {
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  // No timing: a lighter event, used only for ordering.
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}
void destroy_event(int, Event e) {
  if (e && cudaEventDestroy(static_cast<cudaEvent_t>(e)) != cudaSuccess) cudaGetLastError();
}
void record_event(int device, Event e, Stream s) {
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)));
}
void stream_wait_event(int device, Stream s, Event e) {
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0));
}
bool event_done(int, Event e) {
  const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(e));
  if (status == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is an answer, not an error: leave nothing behind
    return false;
  }
  EMBER_CUDA_CHECK(status);
  return true;
}
void synchronize_event(int, Event e) {
  EMBER_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e)));
}

}  // namespace

// ---- the tables -----------------------------------------------------------------------------

const DeviceRuntime& runtime() {
  static const DeviceRuntime table = EMBER_DEVICE_RUNTIME(ember::cuda);
  return table;
}

const KernelTable& kernel_table() {
  static const KernelTable table = EMBER_KERNEL_TABLE(ember::cuda);
  return table;
}

}  // namespace ember::cuda
