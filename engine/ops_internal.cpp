#include "engine/ops_internal.h"

#include <algorithm>

namespace ember::detail {

void check_defined(const char* op, const Tensor& t) {
  EMBER_CHECK(t.defined(), op, ": got an undefined tensor");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.device() == b.device(), op, ": tensors are on different devices (",
              a.device().str(), " and ", b.device().str(), "); move one with .to(device)");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", dtype_name(a.dtype()), " ",
              shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()),
              "); convert one with .to(DType::...)");
}

void check_float(const char* op, const Tensor& t) {
  const DType d = t.dtype();
  if (is_compute_float(d)) return;
  if (d == DType::BF16 || d == DType::F16)
    throw Error(str_cat(op, ": ", dtype_name(d),
                        " arithmetic is not implemented yet (it arrives with mixed precision); "
                        "convert with .to(DType::F32)"));
  throw Error(str_cat(op, ": expected a floating-point tensor (f32 or f64), got ", dtype_name(d),
                      " ", shape_str(t.shape())));
}

void check_dtype(const char* op, const Tensor& t, DType expected, const char* role) {
  EMBER_CHECK(t.dtype() == expected, op, ": ", role, " must be ", dtype_name(expected), ", got ",
              dtype_name(t.dtype()), " ", shape_str(t.shape()));
}

void check_inplace_allowed(const char* op, const Tensor& t) {
  check_defined(op, t);
  EMBER_CHECK(!(grad_mode_enabled() && t.requires_grad()), op,
              ": in-place update of a tensor that requires grad while gradients are recorded; "
              "autograd would not see it. Do it inside a NoGrad scope (e.g. an optimizer step), "
              "or on a detached tensor.");
}

Iteration make_iteration(const Shape& shape, const std::vector<Shape>& operand_strides,
                         const char* op) {
  const size_t operands = operand_strides.size();
  // Keep only dims of size != 1; a size-1 dim never moves any operand.
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides(operands);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sizes.push_back(shape[d]);
    for (size_t k = 0; k < operands; ++k) strides[k].push_back(operand_strides[k][d]);
  }
  // Merge dim d into d+1 (from the back) when every operand steps over d exactly as a run of
  // d+1 would: stride[d] == stride[d+1] * size[d+1].
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d) {
    bool mergeable = true;
    for (size_t k = 0; k < operands && mergeable; ++k)
      mergeable = strides[k][d] == strides[k][d + 1] * sizes[d + 1];
    if (!mergeable) continue;
    sizes[d] *= sizes[d + 1];
    sizes.erase(sizes.begin() + d + 1);
    for (size_t k = 0; k < operands; ++k) {
      strides[k][d] = strides[k][d + 1];
      strides[k].erase(strides[k].begin() + d + 1);
    }
  }
  EMBER_CHECK(static_cast<int>(sizes.size()) <= kernels::kMaxDims, op, ": shape ", shape_str(shape),
              " needs ", sizes.size(), " dimensions after merging; kernels handle at most ",
              kernels::kMaxDims);
  Iteration it;
  it.shape.ndim = static_cast<int>(sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) it.shape.size[d] = sizes[d];
  it.strides.resize(operands);
  for (size_t k = 0; k < operands; ++k)
    for (size_t d = 0; d < sizes.size(); ++d) it.strides[k].v[d] = strides[k][d];
  return it;
}

Shape strides_for(const Tensor& t, const Shape& shape) {
  return expanded_strides(t.shape(), t.strides(), shape);
}

AxisSplit split_at(const Shape& shape, int dim) {
  AxisSplit s;
  for (int d = 0; d < dim; ++d) s.outer *= shape[d];
  s.axis = shape.empty() ? 1 : shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

void copy_into(const Tensor& dst, const Tensor& src) {
  const char* op = "copy";
  EMBER_CHECK(broadcast_shapes(src.shape(), dst.shape(), op) == dst.shape(), op, ": source ",
              shape_str(src.shape()), " cannot be broadcast to destination ",
              shape_str(dst.shape()));
  Tensor source = src;
  if (src.device() != dst.device()) source = src.contiguous().to(dst.device());
  if (dst.numel() == 0) return;
  Iteration it = make_iteration(dst.shape(), {strides_for(source, dst.shape()), dst.strides()}, op);
  kernels_of(dst).copy(it.shape, source.dtype(), source.data_ptr(), it.strides[0], dst.dtype(),
                       dst.data_ptr(), it.strides[1], stream_of(dst));
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced)
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

std::vector<int> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    for (int d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) {
    const int nd = normalize_dim(d, ndim, op);
    EMBER_CHECK(std::find(out.begin(), out.end(), nd) == out.end(), op, ": dim ", d,
                " appears twice");
    out.push_back(nd);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Tensor scalar_like(const Tensor& t, double value) {
  return scalar_tensor(value, {t.dtype(), t.device()});
}

}  // namespace ember::detail
