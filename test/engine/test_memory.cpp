// Memory: the caching allocator's reuse and accounting (tested here with a fake device, since
// its logic does not depend on CUDA), out-of-memory handling, and the CPU allocator's
// statistics.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"
#include "support.h"

using namespace ember;

namespace {

// A pretend device with a fixed capacity that counts its real allocations.
struct FakeDevice {
  explicit FakeDevice(size_t bytes) : capacity(bytes) {}
  size_t capacity;
  size_t used = 0;
  int allocations = 0;
  int frees = 0;
  std::vector<std::pair<void*, size_t>> blocks;

  void* allocate(size_t bytes) {
    if (used + bytes > capacity) return nullptr;
    used += bytes;
    ++allocations;
    void* p = std::malloc(bytes);
    blocks.push_back({p, bytes});
    return p;
  }
  void free(void* p) {
    for (auto it = blocks.begin(); it != blocks.end(); ++it)
      if (it->first == p) {
        used -= it->second;
        blocks.erase(it);
        break;
      }
    ++frees;
    std::free(p);
  }
};

CachingAllocator make_allocator(FakeDevice& device) {
  return CachingAllocator(
      "fake:0", [&device](size_t n) { return device.allocate(n); },
      [&device](void* p) { device.free(p); });
}

}  // namespace

TEST_CASE("a repeated step allocates nothing new from the device") {
  FakeDevice device(1 << 20);
  CachingAllocator allocator = make_allocator(device);
  auto step = [&] {
    // a "training step": activations of a few sizes, freed at the end
    std::vector<void*> live;
    for (size_t bytes : {1000u, 4096u, 70000u, 1000u, 12u})
      live.push_back(allocator.allocate(bytes));
    for (void* p : live) allocator.deallocate(p);
  };
  step();
  const int after_first = device.allocations;
  CHECK(after_first == 5);
  for (int i = 0; i < 10; ++i) step();
  CHECK(device.allocations == after_first);
  CHECK(allocator.stats().device_allocations == after_first);
  CHECK(allocator.stats().current_bytes == 0);
}

TEST_CASE("the caching allocator tracks current and peak bytes") {
  FakeDevice device(1 << 20);
  CachingAllocator allocator = make_allocator(device);
  void* a = allocator.allocate(1000);  // rounds to 1024
  void* b = allocator.allocate(512);
  CHECK(allocator.stats().current_bytes == 1536);
  allocator.deallocate(a);
  CHECK(allocator.stats().current_bytes == 512);
  CHECK(allocator.stats().peak_bytes == 1536);
  CHECK(allocator.stats().reserved_bytes == 1536);  // the freed block stays cached
  allocator.reset_peak();
  CHECK(allocator.stats().peak_bytes == 512);
  allocator.deallocate(b);
  allocator.empty_cache();
  CHECK(allocator.stats().reserved_bytes == 0);
  CHECK(device.used == 0);
  CHECK(allocator.stats().device_frees == 2);
}

TEST_CASE("a cached block is reused only for requests of similar size") {
  FakeDevice device(1 << 20);
  CachingAllocator allocator = make_allocator(device);
  void* big = allocator.allocate(100000);
  allocator.deallocate(big);
  void* small = allocator.allocate(100);  // would waste the big block: a new allocation
  CHECK(small != big);
  CHECK(device.allocations == 2);
  void* similar = allocator.allocate(60000);  // within 2x: takes the cached block
  CHECK(similar == big);
  CHECK(device.allocations == 2);
  allocator.deallocate(small);
  allocator.deallocate(similar);
  allocator.empty_cache();
}

TEST_CASE("out of memory frees the cache and retries before failing") {
  FakeDevice device(4096);
  CachingAllocator allocator = make_allocator(device);
  void* a = allocator.allocate(3000);  // 3072 cached after the free
  allocator.deallocate(a);
  void* b = allocator.allocate(1024);  // 3072 is more than 2x: new block; capacity now full
  allocator.deallocate(b);
  // 4000 bytes: no cached block is large enough and the device is full of cached blocks, so
  // the allocator must give its cache back, then succeed.
  void* c = allocator.allocate(4000);
  CHECK(c != nullptr);
  CHECK(device.frees == 2);
  allocator.deallocate(c);

  try {
    allocator.allocate(1 << 20);
    FAIL("expected OutOfMemoryError");
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    CHECK(message.find("fake:0") != std::string::npos);
    CHECK(message.find("1048576 bytes") != std::string::npos);  // requested
    CHECK(message.find("peak") != std::string::npos);
  }
}

TEST_CASE("freeing a pointer the allocator does not own is an error") {
  FakeDevice device(4096);
  CachingAllocator allocator = make_allocator(device);
  int not_ours = 0;
  CHECK_THROWS_AS(allocator.deallocate(&not_ours), Error);
}

TEST_CASE("CPU tensors are counted and their memory reused") {
  const Device cpu = Device::cpu();
  const int64_t before = memory_stats(cpu).current_bytes;
  reset_peak_memory(cpu);
  {
    Tensor a = empty({1000}, DType::F64);  // 8000 bytes, rounded up to 8192
    CHECK(memory_stats(cpu).current_bytes - before == 8192);
    {
      Tensor b = empty({10}, DType::F32);  // 40 bytes -> 512
      CHECK(memory_stats(cpu).current_bytes - before == 8704);
    }
    Tensor view = a.narrow(0, 0, 10);  // a view allocates nothing
    CHECK(memory_stats(cpu).current_bytes - before == 8192);
  }
  CHECK(memory_stats(cpu).current_bytes == before);
  CHECK(memory_stats(cpu).peak_bytes - before >= 8704);

  // A repeated computation takes its memory from the cache after the first round.
  Tensor x = ones({4096});
  auto step = [&] { return sum(relu(x * 2.0) + x).item<float>(); };
  step();
  const int64_t allocations = memory_stats(cpu).device_allocations;
  for (int i = 0; i < 5; ++i) step();
  CHECK(memory_stats(cpu).device_allocations == allocations);
}
