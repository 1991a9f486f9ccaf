// A block of memory on one device, shared by every tensor that views it. Memory comes from the
// device's allocator (host memory on the CPU, the caching allocator on CUDA) and goes back
// when the last tensor using it is gone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "engine/device.h"

namespace ember {

class Storage {
 public:
  // Allocates `bytes` on `device`.
  Storage(size_t bytes, Device device);
  // Wraps memory ember does not own; `release` is called when the storage dies (may be empty).
  Storage(void* data, size_t bytes, Device device, std::function<void(void*)> release);
  ~Storage();

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;  // empty: memory came from the device allocator
  bool owned_ = true;
};

}  // namespace ember
