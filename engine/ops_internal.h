// Helpers shared by the op files (engine/ops_*.cpp), not part of ember's public interface:
// argument checks with clear messages, strided iteration set-up, and kernel access.
#pragma once

#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/tensor.h"
#include "kernels/kernel_table.h"

namespace ember::detail {

// ---- checks: each error names the op and the offending tensors ----
void check_defined(const char* op, const Tensor& t);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// f32 or f64 (f64 on the CPU only: guaranteed since f64 never reaches CUDA).
void check_float(const char* op, const Tensor& t);
void check_dtype(const char* op, const Tensor& t, DType expected, const char* role);
// In-place ops are not recorded: refuse them on tensors autograd is tracking.
void check_inplace_allowed(const char* op, const Tensor& t);

// ---- kernels and streams of a tensor's device ----
inline const kernels::KernelTable& kernels_of(const Tensor& t) {
  return kernels_for(t.device());
}
inline kernels::Stream stream_of(const Tensor& t) {
  return stream_for(t.device());
}

// ---- strided iteration ----
// The shape to iterate and each operand's strides over it, with size-1 dims dropped and
// neighbouring dims merged wherever every operand allows it.
struct Iteration {
  kernels::IterShape shape;
  std::vector<kernels::Strides> strides;  // one per operand, in the order given
};
Iteration make_iteration(const Shape& shape, const std::vector<Shape>& operand_strides,
                         const char* op);
// A tensor's strides when read as if expanded to `shape`.
Shape strides_for(const Tensor& t, const Shape& shape);

// ---- [outer, axis, inner] view of a contiguous tensor around `dim` ----
struct AxisSplit {
  int64_t outer = 1, axis = 1, inner = 1;
};
AxisSplit split_at(const Shape& shape, int dim);

// Copies src (broadcast to dst's shape, any dtype, any device) into dst's elements.
void copy_into(const Tensor& dst, const Tensor& src);

// The shape a reduction over `dims` leaves (1s kept when keepdim).
Shape reduced_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim);
// dims made non-negative, sorted, unique; empty means all dims.
std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

// zeros(shape) with src added at `index` along dim (index and src share a shape that matches
// `shape` outside dim): the backward of gather, max/min along a dim and topk. Not recorded.
Tensor scatter_add_into_zeros(const Shape& shape, int dim, const Tensor& index, const Tensor& src);

// self = self (op) other / self = f(self, alpha), in place; for Tensor::add_ and mul_. Not
// recorded by autograd.
void binary_inplace(kernels::BinaryOp op, const Tensor& self, const Tensor& other);
void unary_inplace(kernels::UnaryOp op, const Tensor& self, double alpha);

// A 0-d tensor on t's device with t's dtype (filled by a kernel: no host-device copy).
Tensor scalar_like(const Tensor& t, double value);

}  // namespace ember::detail
