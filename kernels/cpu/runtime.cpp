// The CPU as a device: host memory through the same caching allocator as CUDA's
// (engine/caching_allocator.h). Caching matters on the CPU too: a fresh large block comes
// from mmap and costs a page fault per 4 KiB on first touch, which made an elementwise add
// three times slower than the kernel itself. Plain memcpy; no streams, and no events: every
// copy is complete when it returns.
#include <cstdlib>  // std::aligned_alloc, std::free
#include <cstring>  // memcpy, strncpy

#include "engine/caching_allocator.h"  // CachingAllocator
#include "engine/error.h"              // OutOfMemoryError, str_cat
#include "kernels/cpu/cpu_kernels.h"   // declarations

namespace ember::cpu {

namespace {

constexpr size_t kAlignment = 64;  // a cache line; also what AVX-512 loads like

CachingAllocator& host_allocator() {
  // Never destroyed: tensors in static objects may be freed after this would be.
  static CachingAllocator* allocator = new CachingAllocator(
      "cpu", [](size_t bytes) { return std::aligned_alloc(kAlignment, bytes); },  // bytes: x512
      [](void* ptr) { std::free(ptr); });
  return *allocator;
}

int device_count() {
  return 1;
}
const char* unavailable_reason() {
  return "";
}
void set_device(int) {}

DeviceProperties properties(int) {
  DeviceProperties p;
  std::strncpy(p.name, "CPU", sizeof(p.name) - 1);
  return p;
}

void* allocate(int, size_t bytes) {
  return host_allocator().allocate(bytes);
}
void deallocate(int, void* ptr) {
  host_allocator().deallocate(ptr);
}
MemoryStats memory_stats(int) {
  return host_allocator().stats();
}
void reset_peak(int) {
  host_allocator().reset_peak();
}
void empty_cache(int) {
  host_allocator().empty_cache();
}

void copy_bytes(int, CopyKind, void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

Stream stream(int) {
  return nullptr;
}
void synchronize(int) {}

// ---- asynchronous copies: on the CPU everything is done the moment it is asked for ----------

void* allocate_pinned(int, size_t bytes) {
  if (bytes == 0) return nullptr;
  // aligned_alloc wants a multiple of the alignment
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = std::aligned_alloc(kAlignment, rounded);
  if (!ptr)
    throw OutOfMemoryError(str_cat("cpu is out of memory: tried to allocate ", bytes,
                                   " bytes of host memory for copies"));
  return ptr;
}
void free_pinned(int, void* ptr) {
  std::free(ptr);
}
Stream create_stream(int) {
  return nullptr;
}
void destroy_stream(int, Stream) {}
void copy_to_device_async(int, void* dst, const void* src, size_t bytes, Stream) {
  if (bytes) std::memcpy(dst, src, bytes);
}
DeviceRuntime::Event create_event(int) {
  return nullptr;
}
void destroy_event(int, DeviceRuntime::Event) {}
void record_event(int, DeviceRuntime::Event, Stream) {}
void stream_wait_event(int, Stream, DeviceRuntime::Event) {}
bool event_done(int, DeviceRuntime::Event) {
  return true;
}
void synchronize_event(int, DeviceRuntime::Event) {}

}  // namespace

const DeviceRuntime& runtime() {
  static const DeviceRuntime table = EMBER_DEVICE_RUNTIME(ember::cpu);
  return table;
}

}  // namespace ember::cpu
