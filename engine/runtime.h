// The registration table: how the engine finds the kernels and the runtime of a device.
//
// The CPU backend (kernels/cpu) is always there. The CUDA backend (kernels/cuda, the target
// ember_cuda) is registered only in builds with CUDA; in a CPU-only build, and on a machine
// with no GPU or driver, asking for a CUDA device raises an error that says why.
#pragma once

#include <string>

#include "engine/device.h"
#include "kernels/kernel_table.h"  // KernelTable, DeviceRuntime

namespace ember {

// The kernels of `device`'s backend; for CUDA this also makes `device` current on this thread.
const kernels::KernelTable& kernels_for(Device device);
const kernels::DeviceRuntime& runtime_for(Device device);
kernels::Stream stream_for(Device device);  // the device's default stream (nullptr on the CPU)

bool cuda_compiled();                   // built with the CUDA backend
int cuda_device_count();                // 0 when not compiled, or no GPU/driver
bool cuda_available();                  // cuda_device_count() > 0
std::string cuda_unavailable_reason();  // "" when available

// CUDA device 0 when a GPU is usable, else the CPU. The first call on a machine without one
// prints a single line saying so (to stderr), so programs never fail for lack of a GPU.
Device best_available_device();

// Parses a --device flag ("cpu", "cuda", "cuda:1", "auto"): "auto" means best_available_device();
// a CUDA device that does not exist is an error naming the flag's value and the reason.
Device resolve_device(const std::string& text);

// TF32 tensor cores for f32 matrix products on CUDA (and convolutions, later): off by default
// and in every test, so f32 CUDA results compare with the CPU at f32 tolerances.
void set_allow_tf32(bool allow);
bool allow_tf32();

// Waits for all queued work on the device (no-op on the CPU).
void synchronize(Device device);
kernels::MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);
void empty_cache(Device device);
kernels::DeviceProperties device_properties(Device device);

// ---- asynchronous copies to a device (what the DataLoader uses) -----------------------------
// A GPU runs the work queued on one stream in order. To copy the next batch while the model
// computes on the default stream (stream_for), the copy goes on a second stream, from pinned
// host memory (page-locked, so the GPU's copy engine can read it while the host works on). An
// event recorded after the copy marks "the batch has arrived"; making the default stream wait
// for it orders the model's kernels after the copy, and the host never blocks:
//
//   DeviceStream copies(gpu);
//   copy_to_device_async(gpu, images.data_ptr(), pinned, bytes, copies.get());
//   DeviceEvent arrived(gpu);
//   arrived.record(copies.get());
//   arrived.make_stream_wait(stream_for(gpu));  // the model's kernels come after the copy
//   ... the pinned memory may be refilled once arrived.done() ...
//
// On the CPU all of this is plain: pinned memory is ordinary memory, copies complete at once,
// and events are always done.

// Pinned host memory for copies to `device`; nullptr for 0 bytes. Give it back with free_pinned.
void* allocate_pinned(Device device, size_t bytes);
void free_pinned(Device device, void* ptr);

// Queues a copy of `bytes` from pinned host memory to `device_dst` on `stream` and returns at
// once. `pinned_src` must stay unchanged until an event recorded after the copy is done.
void copy_to_device_async(Device device, void* device_dst, const void* pinned_src, size_t bytes,
                          kernels::Stream stream);

// A stream of its own on `device`, beside the default one, that never waits for it implicitly.
// Destroying it lets the work already queued on it finish.
class DeviceStream {
 public:
  explicit DeviceStream(Device device);
  ~DeviceStream();
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  kernels::Stream get() const { return stream_; }  // nullptr on the CPU
  Device device() const { return device_; }

 private:
  Device device_;
  kernels::Stream stream_ = nullptr;
};

// A marker in a stream's queue of work.
class DeviceEvent {
 public:
  explicit DeviceEvent(Device device);
  ~DeviceEvent();
  DeviceEvent(const DeviceEvent&) = delete;
  DeviceEvent& operator=(const DeviceEvent&) = delete;

  // Done once all work queued on `stream` up to now has completed. Recording again moves the
  // marker: done() and waits then refer to the latest recording.
  void record(kernels::Stream stream);
  // Work queued on `stream` from now on starts only after this event is done.
  void make_stream_wait(kernels::Stream stream) const;
  bool done() const;         // true if never recorded
  void synchronize() const;  // the host waits until done

 private:
  Device device_;
  kernels::DeviceRuntime::Event event_ = nullptr;
};

}  // namespace ember
