// The window arithmetic of 2-d pooling along one axis, written once for both backends
// (kernels/cpu/pool.cpp and kernels/cuda/pool.cu), so that they agree on which inputs each
// output reads and on every divisor. The geometry is that of kernels/kernel_table.h: output o
// reads positions o * stride - pad + i * dilation for taps i in [0, kernel).
//
// Forward kernels ask "which inputs does output o read?"; the CUDA backward kernels ask the
// inverse, "which outputs read input p?", so that each thread gathers the gradient of one input
// instead of scattering with atomics.
#pragma once

#include <cstdint>

#include "engine/host_device.h"  // EMBER_HOST_DEVICE

namespace ember::kernels {

// A half-open range [begin, end); empty when begin == end.
struct IndexRange {
  int64_t begin, end;
};

EMBER_HOST_DEVICE inline int64_t clamp_to(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// The taps i of a window starting at `start` whose positions start + i * dilation lie inside
// [0, size).
EMBER_HOST_DEVICE inline IndexRange taps_inside(int64_t start, int64_t kernel, int64_t dilation,
                                                int64_t size) {
  // first i with start + i * dilation >= 0, and one past the last with start + i * dilation < size
  const int64_t begin = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int64_t end = start < size ? (size - start + dilation - 1) / dilation : 0;
  const int64_t last = clamp_to(end, 0, kernel);
  return {clamp_to(begin, 0, last), last};
}

// The outputs whose window spans position p, i.e. o * stride - pad <= p <= o * stride - pad +
// (kernel - 1) * dilation. With dilation > 1 such a window may step over p between two taps.
EMBER_HOST_DEVICE inline IndexRange outputs_spanning(int64_t p, int64_t kernel, int64_t stride,
                                                     int64_t pad, int64_t dilation,
                                                     int64_t outputs) {
  const int64_t latest = p + pad;                             // o * stride <= latest
  const int64_t earliest = latest - (kernel - 1) * dilation;  // o * stride >= earliest
  const int64_t begin = earliest <= 0 ? 0 : (earliest + stride - 1) / stride;
  const int64_t end = clamp_to(latest / stride + 1, 0, outputs);
  return {clamp_to(begin, 0, end), end};
}

// Average pooling along one axis (no dilation): the inputs output o sums, and the extent of its
// window clipped to the padded input [-pad, size + pad), which count_include_pad divides by. In
// ceil mode the last window may overhang the right padding; the overhang never counts.
struct AverageWindow {
  IndexRange inputs;
  int64_t padded_extent;
};
EMBER_HOST_DEVICE inline AverageWindow average_window(int64_t o, int64_t kernel, int64_t stride,
                                                      int64_t pad, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t padded_end = start + kernel < size + pad ? start + kernel : size + pad;
  const int64_t end = clamp_to(start + kernel, 0, size);
  return {{clamp_to(start, 0, end), end}, padded_end - start};
}

// What output (oh, ow) of average pooling divides its sum by (PyTorch's rule); 0 when the
// window holds no input (PyTorch then writes 0).
EMBER_HOST_DEVICE inline int64_t average_divisor(const AverageWindow& rows,
                                                 const AverageWindow& cols, bool count_include_pad,
                                                 int64_t divisor_override) {
  const int64_t inputs =
      (rows.inputs.end - rows.inputs.begin) * (cols.inputs.end - cols.inputs.begin);
  if (inputs == 0) return 0;
  if (divisor_override != 0) return divisor_override;
  return count_include_pad ? rows.padded_extent * cols.padded_extent : inputs;
}

// Adaptive pooling: output o of `outputs` covers inputs [floor(o * size / outputs),
// ceil((o + 1) * size / outputs)). Swapping the roles gives the inverse: input p of `size` is
// covered by outputs [floor(p * outputs / size), ceil((p + 1) * outputs / size)), because
// floor(o s / n) <= p < ceil((o + 1) s / n)  <=>  o < (p + 1) n / s  and  o + 1 > p n / s.
EMBER_HOST_DEVICE inline IndexRange adaptive_window(int64_t o, int64_t outputs, int64_t size) {
  return {o * size / outputs, ((o + 1) * size + outputs - 1) / outputs};
}

}  // namespace ember::kernels
