#include "engine/storage.h"

#include "engine/runtime.h"  // runtime_for

namespace ember {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = runtime_for(device).allocate(device.index, bytes);
}

Storage::Storage(void* data, size_t bytes, Device device, std::function<void(void*)> release)
    : data_(data), bytes_(bytes), device_(device), release_(std::move(release)), owned_(false) {}

Storage::~Storage() {
  if (!owned_) {
    if (release_) release_(data_);
    return;
  }
  runtime_for(device_).deallocate(device_.index, data_);
}

}  // namespace ember
