// The CPU as a device: 64-byte aligned host memory with the same accounting as the CUDA caching
// allocator (current, peak, number of real allocations), plain memcpy, no streams.
#include <atomic>   // counters shared by threads
#include <cstdlib>  // std::aligned_alloc, std::free
#include <cstring>  // memcpy
#include <mutex>
#include <unordered_map>

#include "engine/error.h"             // OutOfMemoryError
#include "kernels/cpu/cpu_kernels.h"  // declarations

namespace ember::cpu {

namespace {

constexpr size_t kAlignment = 64;  // a cache line; also what AVX-512 loads like

struct HostMemory {
  std::mutex mutex;
  std::unordered_map<void*, size_t> sizes;  // live allocations
  MemoryStats stats;
};

HostMemory& host_memory() {
  static HostMemory* memory = new HostMemory();  // never destroyed: tensors may outlive statics
  return *memory;
}

int device_count() { return 1; }
const char* unavailable_reason() { return ""; }
void set_device(int) {}

DeviceProperties properties(int) {
  DeviceProperties p;
  std::strncpy(p.name, "CPU", sizeof(p.name) - 1);
  return p;
}

void* allocate(int, size_t bytes) {
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = rounded ? std::aligned_alloc(kAlignment, rounded) : nullptr;
  if (rounded && !ptr)
    throw OutOfMemoryError(str_cat("out of host memory: tried to allocate ", bytes, " bytes"));
  HostMemory& m = host_memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (ptr) m.sizes[ptr] = rounded;
  m.stats.current_bytes += static_cast<int64_t>(rounded);
  m.stats.reserved_bytes = m.stats.current_bytes;
  if (m.stats.current_bytes > m.stats.peak_bytes) m.stats.peak_bytes = m.stats.current_bytes;
  ++m.stats.device_allocations;
  return ptr;
}

void deallocate(int, void* ptr) {
  if (!ptr) return;
  HostMemory& m = host_memory();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto it = m.sizes.find(ptr);
    if (it != m.sizes.end()) {
      m.stats.current_bytes -= static_cast<int64_t>(it->second);
      m.stats.reserved_bytes = m.stats.current_bytes;
      ++m.stats.device_frees;
      m.sizes.erase(it);
    }
  }
  std::free(ptr);
}

MemoryStats memory_stats(int) {
  HostMemory& m = host_memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.stats;
}

void reset_peak(int) {
  HostMemory& m = host_memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  m.stats.peak_bytes = m.stats.current_bytes;
}

void empty_cache(int) {}  // nothing is cached

void copy_bytes(int, CopyKind, void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

Stream stream(int) { return nullptr; }
void synchronize(int) {}

}  // namespace

const DeviceRuntime& runtime() {
  static const DeviceRuntime table = [] {
    DeviceRuntime r{};
    r.device_count = device_count;
    r.unavailable_reason = unavailable_reason;
    r.set_device = set_device;
    r.properties = properties;
    r.allocate = allocate;
    r.deallocate = deallocate;
    r.memory_stats = memory_stats;
    r.reset_peak = reset_peak;
    r.empty_cache = empty_cache;
    r.copy_bytes = copy_bytes;
    r.stream = stream;
    r.synchronize = synchronize;
    return r;
  }();
  return table;
}

}  // namespace ember::cpu
