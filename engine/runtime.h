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

}  // namespace ember
