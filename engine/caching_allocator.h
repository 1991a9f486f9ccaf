// A caching allocator: device memory is slow to obtain (cudaMalloc synchronizes the device and
// costs tens of microseconds), and a training step asks for the same sizes over and over. So a
// freed block goes to a cache, and the next request of a similar size takes it back. After the
// first step, a step allocates nothing new from the device; MemoryStats::device_allocations
// lets a test prove it.
//
// The allocator knows nothing of CUDA: it is given the raw allocate/free functions, so its
// logic is tested on the CPU (test/engine/test_memory.cpp) and used by the CUDA runtime
// (kernels/cuda/runtime.cpp) with cudaMalloc/cudaFree.
//
// Policy, kept simple on purpose: sizes are rounded up to 512 bytes; a request takes the
// smallest cached block that fits and is at most twice its size (blocks are never split); when
// the device is out of memory, the cache is given back and the request tried once more.
// One stream per device means a block freed on the host may be reused at once: any later
// kernel that writes it is queued after every kernel that read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>  // std::function
#include <map>         // std::multimap: cached blocks by size
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/error.h"          // OutOfMemoryError
#include "kernels/kernel_table.h"  // MemoryStats

namespace ember {

class CachingAllocator {
 public:
  using RawAllocate = std::function<void*(size_t bytes)>;  // nullptr when out of memory
  using RawFree = std::function<void(void* ptr)>;

  static constexpr size_t kRounding = 512;

  // `device_name` ("cuda:0") is used in out-of-memory messages.
  CachingAllocator(std::string device_name, RawAllocate raw_allocate, RawFree raw_free)
      : device_name_(std::move(device_name)),
        raw_allocate_(std::move(raw_allocate)),
        raw_free_(std::move(raw_free)) {}

  // Cached blocks go back to the device; blocks still in use belong to their tensors. (The CPU
  // and CUDA runtimes never destroy their allocators: tensors may outlive static objects.)
  ~CachingAllocator() { release_cached(); }

  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  static size_t round_size(size_t bytes) {
    return bytes == 0 ? kRounding : (bytes + kRounding - 1) / kRounding * kRounding;
  }

  void* allocate(size_t bytes) {
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    size_t block_size = size;  // a cached block may be larger than asked for
    void* ptr = take_cached(size, block_size);
    if (!ptr) {
      ptr = raw_allocate_(size);
      if (!ptr) {  // out of memory: give the cache back and try once more
        release_cached();
        ptr = raw_allocate_(size);
      }
      if (!ptr)
        throw OutOfMemoryError(str_cat(
            device_name_, " is out of memory: tried to allocate ", bytes, " bytes; ember holds ",
            stats_.current_bytes, " bytes in live tensors (peak ", stats_.peak_bytes,
            "). Use a smaller batch, or free tensors you no longer need."));
      ++stats_.device_allocations;
      stats_.reserved_bytes += static_cast<int64_t>(size);
    }
    live_[ptr] = block_size;
    stats_.current_bytes += static_cast<int64_t>(block_size);
    if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
    return ptr;
  }

  void deallocate(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end())
      throw Error(str_cat(device_name_, ": deallocate of a pointer this allocator does not own"));
    stats_.current_bytes -= static_cast<int64_t>(it->second);
    cached_.emplace(it->second, ptr);
    live_.erase(it);
  }

  // Gives every cached block back to the device (the caller synchronizes the device first).
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached();
  }

  kernels::MemoryStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.current_bytes;
  }

  int64_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_.reserved_bytes - stats_.current_bytes;
  }

 private:
  // The smallest cached block of at least `size` bytes and at most twice that, or nullptr.
  void* take_cached(size_t size, size_t& block_size) {
    auto it = cached_.lower_bound(size);
    if (it == cached_.end() || it->first > 2 * size) return nullptr;
    void* ptr = it->second;
    block_size = it->first;
    cached_.erase(it);
    return ptr;
  }

  void release_cached() {
    for (auto& [size, ptr] : cached_) {
      raw_free_(ptr);
      stats_.reserved_bytes -= static_cast<int64_t>(size);
      ++stats_.device_frees;
    }
    cached_.clear();
  }

  std::string device_name_;
  RawAllocate raw_allocate_;
  RawFree raw_free_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cached_;     // free blocks, by size
  std::unordered_map<void*, size_t> live_;  // blocks in use, with their sizes
  kernels::MemoryStats stats_;
};

}  // namespace ember
