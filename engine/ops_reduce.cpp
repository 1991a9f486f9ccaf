// Reductions and their backward rules.
//   sum:        dx = expand(dy)                       (dy gets back the reduced dims as 1s)
//   mean:       dx = expand(dy) / N
//   var:        dx = expand(dy) * 2 (x - mean) / (N - correction)
//   max/min/topk along a dim: dy goes to the positions the values came from (scatter_add)
// Kernels reduce the middle of [outer, axis, inner]. Reduced dims that are adjacent already
// form that middle block of a contiguous tensor; other sets of dims are first permuted to
// the end.
#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

using kernels::ArgReduceOp;
using kernels::ReduceOp;

namespace {

struct Prepared {
  Tensor data;  // contiguous
  detail::AxisSplit split;
};

// Lays x out so that `dims` (sorted, unique, non-empty) form the axis of [outer, axis, inner].
Prepared prepare(const Tensor& x, const std::vector<int>& dims) {
  Prepared p;
  const Shape& shape = x.shape();
  const bool adjacent = dims.back() - dims.front() + 1 == static_cast<int>(dims.size());
  if (adjacent) {
    p.data = x.detach().contiguous();
    for (int d = 0; d < dims.front(); ++d) p.split.outer *= shape[d];
    p.split.axis = 1;
    for (int d : dims) p.split.axis *= shape[d];
    for (size_t d = dims.back() + 1; d < shape.size(); ++d) p.split.inner *= shape[d];
    return p;
  }
  std::vector<int64_t> order;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d)
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) {
      order.push_back(d);
      p.split.outer *= shape[d];
    }
  p.split.axis = 1;
  for (int d : dims) {
    order.push_back(d);
    p.split.axis *= shape[d];
  }
  p.data = x.detach().permute(order).contiguous();
  return p;
}

// The gradient dy of a reduction, reshaped to keep the reduced dims as 1s and expanded back.
Tensor expand_reduced(const Tensor& dy, const Shape& input_shape, const std::vector<int>& dims) {
  return dy.reshape(detail::reduced_shape(input_shape, dims, true)).expand(input_shape);
}

class SumBackward : public Node {
 public:
  SumBackward(Shape input_shape, std::vector<int> dims, double scale)
      : input_shape_(std::move(input_shape)), dims_(std::move(dims)), scale_(scale) {}
  std::string name() const override { return scale_ == 1 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = scale_ == 1 ? g[0] : mul(g[0], scale_);
    return {expand_reduced(dy, input_shape_, dims_)};
  }

 private:
  Shape input_shape_;
  std::vector<int> dims_;
  double scale_;  // 1 for sum, 1/N for mean
};

class VarBackward : public Node {
 public:
  VarBackward(Tensor x, std::vector<int> dims, double divisor)
      : x_(std::move(x)), dims_(std::move(dims)), divisor_(divisor) {}
  std::string name() const override { return "VarBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    std::vector<int64_t> dims(dims_.begin(), dims_.end());
    Tensor centered = sub(x_, mean(x_, dims, true));
    return {mul(mul(expand_reduced(g[0], x_.shape(), dims_), centered), 2.0 / divisor_)};
  }
  void release_saved() override { x_ = Tensor(); }

 private:
  Tensor x_;
  std::vector<int> dims_;
  double divisor_;  // N - correction
};

// max/min/topk along one dim: the gradient lands where each value came from.
class IndexedValuesBackward : public Node {
 public:
  IndexedValuesBackward(const char* name, Shape input_shape, int dim, Tensor indices)
      : name_(name),
        input_shape_(std::move(input_shape)),
        dim_(dim),
        indices_(std::move(indices)) {}
  std::string name() const override { return std::string(name_) + "Backward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    return {detail::scatter_add_into_zeros(input_shape_, dim_, indices_, g[0])};
  }
  void release_saved() override { indices_ = Tensor(); }

 private:
  const char* name_;
  Shape input_shape_;
  int dim_;
  Tensor indices_;  // keepdim-shaped i64
};

Tensor reduce(const char* name, ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims_in,
              bool keepdim) {
  detail::check_defined(name, x);
  const DType dt = x.dtype();
  const bool integer = dt == DType::U8 || dt == DType::I32 || dt == DType::I64;
  if (!(integer && op == ReduceOp::Sum)) detail::check_float(name, x);
  const std::vector<int> dims = detail::normalize_dims(dims_in, x.dim(), name);
  const DType out_dtype = integer ? DType::I64 : dt;
  if (dims.empty()) {  // a 0-d tensor: the reduction is the element itself
    Tensor out = x.to(out_dtype);
    return out.is_same(x) ? x.clone() : out;
  }
  const Shape out_shape = detail::reduced_shape(x.shape(), dims, keepdim);
  Prepared p = prepare(x, dims);
  Tensor out = empty(out_shape, {out_dtype, x.device()});
  if (out.numel() > 0)
    detail::kernels_of(x).reduce(op, dt, out_dtype, p.data.data_ptr(), out.data_ptr(),
                                 p.split.outer, p.split.axis, p.split.inner, detail::stream_of(x));
  if (needs_grad({x})) {
    const double scale = op == ReduceOp::Mean ? 1.0 / static_cast<double>(p.split.axis) : 1.0;
    connect(std::make_shared<SumBackward>(x.shape(), dims, scale), {x}, {&out});
  }
  return out;
}

ValuesIndices arg_reduce(const char* name, ArgReduceOp op, const Tensor& x, int64_t dim,
                         bool keepdim, bool want_values) {
  detail::check_defined(name, x);
  EMBER_CHECK(x.dtype() != DType::BF16 && x.dtype() != DType::F16, name, ": ",
              dtype_name(x.dtype()), " is not implemented yet; convert with .to(DType::F32)");
  const int d = normalize_dim(dim, x.dim(), name);
  const std::vector<int> dims = {d};
  const Shape kept = detail::reduced_shape(x.shape(), dims, true);
  EMBER_CHECK(x.dim() == 0 || x.shape()[d] > 0, name, ": dim ", dim, " of shape ",
              shape_str(x.shape()), " is empty; there is no maximum or minimum to take");
  Prepared p = x.dim() == 0 ? Prepared{x.detach().contiguous(), {}} : prepare(x, dims);
  ValuesIndices r;
  r.indices = empty(kept, {DType::I64, x.device()});
  if (want_values) r.values = empty(kept, {x.dtype(), x.device()});
  if (r.indices.numel() > 0)
    detail::kernels_of(x).arg_reduce(op, x.dtype(), p.data.data_ptr(),
                                     want_values ? r.values.data_ptr() : nullptr,
                                     r.indices.data<int64_t>(), p.split.outer, p.split.axis,
                                     p.split.inner, detail::stream_of(x));
  if (want_values && needs_grad({x}))
    connect(std::make_shared<IndexedValuesBackward>(name, x.shape(), x.dim() ? d : 0,
                                                    r.indices.detach()),
            {x}, {&r.values});
  if (!keepdim && x.dim() > 0) {
    r.indices = r.indices.squeeze(d);
    if (want_values) r.values = r.values.squeeze(d);
  }
  return r;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce("sum", ReduceOp::Sum, x, dims, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce("mean", ReduceOp::Mean, x, dims, keepdim);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, double correction, bool keepdim) {
  const char* name = "var";
  detail::check_defined(name, x);
  detail::check_float(name, x);
  const std::vector<int> dims = detail::normalize_dims(dims_in, x.dim(), name);
  EMBER_CHECK(!dims.empty(), name, ": a 0-d tensor has no variance");
  Prepared p = prepare(x, dims);
  Tensor out = empty(detail::reduced_shape(x.shape(), dims, keepdim), {x.dtype(), x.device()});
  if (out.numel() > 0)
    detail::kernels_of(x).variance(x.dtype(), p.data.data_ptr(), out.data_ptr(), p.split.outer,
                                   p.split.axis, p.split.inner, correction, detail::stream_of(x));
  if (needs_grad({x}))
    connect(std::make_shared<VarBackward>(x.detach(), dims,
                                          static_cast<double>(p.split.axis) - correction),
            {x}, {&out});
  return out;
}

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_reduce("max", ArgReduceOp::Max, x, dim, keepdim, true);
}
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_reduce("min", ArgReduceOp::Min, x, dim, keepdim, true);
}
Tensor max(const Tensor& x) {
  return max(x.reshape({-1}), 0).values;
}
Tensor min(const Tensor& x) {
  return min(x.reshape({-1}), 0).values;
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_reduce("argmax", ArgReduceOp::Max, x, dim, keepdim, false).indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_reduce("argmin", ArgReduceOp::Min, x, dim, keepdim, false).indices;
}

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  const char* name = "topk";
  detail::check_defined(name, x);
  EMBER_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64 || x.dtype() == DType::I32 ||
                  x.dtype() == DType::I64,
              name, ": dtype ", dtype_name(x.dtype()), " is not supported");
  EMBER_CHECK(x.dim() > 0, name, ": expected a tensor with at least one dimension");
  const int d = normalize_dim(dim, x.dim(), name);
  EMBER_CHECK(k >= 0 && k <= x.shape()[d], name, ": k = ", k, " is out of range for dim ", dim,
              " of size ", x.shape()[d]);
  Prepared p = prepare(x, {d});
  Shape out_shape = x.shape();
  out_shape[d] = k;
  ValuesIndices r{empty(out_shape, {x.dtype(), x.device()}),
                  empty(out_shape, {DType::I64, x.device()})};
  if (r.values.numel() > 0)
    detail::kernels_of(x).topk(x.dtype(), p.data.data_ptr(), r.values.data_ptr(),
                               r.indices.data<int64_t>(), p.split.outer, p.split.axis,
                               p.split.inner, k, largest, detail::stream_of(x));
  if (needs_grad({x}))
    connect(std::make_shared<IndexedValuesBackward>(name, x.shape(), d, r.indices.detach()), {x},
            {&r.values});
  return r;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  EMBER_CHECK(static_cast<int64_t>(shape.size()) <= x.dim(), "sum_to: cannot sum ",
              shape_str(x.shape()), " to ", shape_str(shape), " (more dimensions)");
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < lead; ++d) dims.push_back(d);
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t size = x.shape()[lead + i];
    EMBER_CHECK(shape[i] == size || shape[i] == 1, "sum_to: cannot sum ", shape_str(x.shape()),
                " to ", shape_str(shape));
    if (shape[i] == 1 && size != 1) dims.push_back(lead + static_cast<int64_t>(i));
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, true).reshape(shape);
}

}  // namespace ember
