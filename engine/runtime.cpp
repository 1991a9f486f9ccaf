// The registration table. This is the only file of the engine that knows whether a CUDA
// backend was built (EMBER_WITH_CUDA is defined for this file alone, by CMakeLists.txt).
#include "engine/runtime.h"

#include <atomic>
#include <cstdio>  // the one-line "running on the CPU" note
#include <mutex>

#include "engine/error.h"             // EMBER_CHECK
#include "kernels/cpu/cpu_kernels.h"  // the CPU backend

#if EMBER_WITH_CUDA
namespace ember::cuda {  // kernels/cuda/runtime.cpp
const kernels::KernelTable& kernel_table();
const kernels::DeviceRuntime& runtime();
}  // namespace ember::cuda
#endif

namespace ember {

namespace {

const kernels::DeviceRuntime* cuda_runtime() {
#if EMBER_WITH_CUDA
  return &cuda::runtime();
#else
  return nullptr;
#endif
}

void check_cuda_device(Device device) {
  EMBER_CHECK(cuda_compiled(), "device ", device.str(),
              ": this ember was built without CUDA (make CUDA=0); rebuild with `make` on a "
              "machine with the CUDA toolkit to use a GPU");
  const int count = cuda_device_count();
  EMBER_CHECK(count > 0, "device ", device.str(), ": no usable GPU (", cuda_unavailable_reason(),
              ")");
  EMBER_CHECK(device.index >= 0 && device.index < count, "device ", device.str(),
              " does not exist: this machine has ", count,
              " CUDA device(s), cuda:0 to cuda:", count - 1);
}

std::atomic<bool> g_allow_tf32{false};

}  // namespace

bool cuda_compiled() {
  return cuda_runtime() != nullptr;
}

int cuda_device_count() {
  const kernels::DeviceRuntime* rt = cuda_runtime();
  return rt ? rt->device_count() : 0;
}

bool cuda_available() {
  return cuda_device_count() > 0;
}

std::string cuda_unavailable_reason() {
  const kernels::DeviceRuntime* rt = cuda_runtime();
  if (!rt) return "ember was built without CUDA";
  return rt->unavailable_reason();
}

const kernels::KernelTable& kernels_for(Device device) {
  if (device.is_cpu()) return cpu::kernel_table();
#if EMBER_WITH_CUDA
  check_cuda_device(device);
  cuda::runtime().set_device(device.index);
  return cuda::kernel_table();
#else
  check_cuda_device(device);  // throws: not compiled
  return cpu::kernel_table();
#endif
}

const kernels::DeviceRuntime& runtime_for(Device device) {
  if (device.is_cpu()) return cpu::runtime();
  check_cuda_device(device);
  return *cuda_runtime();
}

kernels::Stream stream_for(Device device) {
  return runtime_for(device).stream(device.index);
}

Device best_available_device() {
  if (cuda_available()) return Device::cuda(0);
  static std::once_flag noted;
  std::call_once(noted, [] {
    std::fprintf(stderr, "ember: running on the CPU (%s)\n", cuda_unavailable_reason().c_str());
  });
  return Device::cpu();
}

Device resolve_device(const std::string& text) {
  if (text == "auto") return best_available_device();
  Device device = Device::parse(text);
  if (device.is_cuda()) check_cuda_device(device);
  return device;
}

void set_allow_tf32(bool allow) {
  g_allow_tf32 = allow;
}
bool allow_tf32() {
  return g_allow_tf32;
}

void synchronize(Device device) {
  runtime_for(device).synchronize(device.index);
}
kernels::MemoryStats memory_stats(Device device) {
  return runtime_for(device).memory_stats(device.index);
}
void reset_peak_memory(Device device) {
  runtime_for(device).reset_peak(device.index);
}
void empty_cache(Device device) {
  runtime_for(device).empty_cache(device.index);
}
kernels::DeviceProperties device_properties(Device device) {
  return runtime_for(device).properties(device.index);
}

// ---- asynchronous copies --------------------------------------------------------------------

void* allocate_pinned(Device device, size_t bytes) {
  return runtime_for(device).allocate_pinned(device.index, bytes);
}
void free_pinned(Device device, void* ptr) {
  if (ptr) runtime_for(device).free_pinned(device.index, ptr);
}

void copy_to_device_async(Device device, void* device_dst, const void* pinned_src, size_t bytes,
                          kernels::Stream stream) {
  runtime_for(device).copy_to_device_async(device.index, device_dst, pinned_src, bytes, stream);
}

DeviceStream::DeviceStream(Device device) : device_(device) {
  stream_ = runtime_for(device).create_stream(device.index);
}
DeviceStream::~DeviceStream() {
  if (stream_) runtime_for(device_).destroy_stream(device_.index, stream_);
}

DeviceEvent::DeviceEvent(Device device) : device_(device) {
  event_ = runtime_for(device).create_event(device.index);
}
DeviceEvent::~DeviceEvent() {
  if (event_) runtime_for(device_).destroy_event(device_.index, event_);
}
void DeviceEvent::record(kernels::Stream stream) {
  runtime_for(device_).record_event(device_.index, event_, stream);
}
void DeviceEvent::make_stream_wait(kernels::Stream stream) const {
  runtime_for(device_).stream_wait_event(device_.index, stream, event_);
}
bool DeviceEvent::done() const {
  return runtime_for(device_).event_done(device_.index, event_);
}
void DeviceEvent::synchronize() const {
  runtime_for(device_).synchronize_event(device_.index, event_);
}

}  // namespace ember
