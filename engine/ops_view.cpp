// Views (new shape/strides/offset on the same storage) and copies (contiguous, clone, dtype
// and device conversion), with their backward rules:
//   reshape/view/squeeze/unsqueeze: reshape the gradient back
//   permute/transpose: permute the gradient by the inverse permutation
//   narrow/slice/select: scatter the gradient into zeros of the input's shape
//   expand: sum the gradient over the broadcast dims (sum_to)
//   contiguous/clone/to(dtype)/to(device): the gradient, converted back
#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

class ReshapeBackward : public Node {
 public:
  explicit ReshapeBackward(Shape input_shape) : input_shape_(std::move(input_shape)) {}
  std::string name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    return {g[0].reshape(input_shape_)};
  }

 private:
  Shape input_shape_;
};

class PermuteBackward : public Node {
 public:
  explicit PermuteBackward(std::vector<int64_t> dims) : inverse_(dims.size()) {
    for (size_t i = 0; i < dims.size(); ++i) inverse_[dims[i]] = static_cast<int64_t>(i);
  }
  std::string name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].permute(inverse_)}; }

 private:
  std::vector<int64_t> inverse_;
};

// The gradient of a strided sub-view: zeros of the input's shape, with the gradient written
// into the same sub-view of them.
class SliceBackward : public Node {
 public:
  SliceBackward(Shape input_shape, int dim, int64_t start, int64_t end, int64_t step)
      : input_shape_(std::move(input_shape)), dim_(dim), start_(start), end_(end), step_(step) {}
  std::string name() const override { return "SliceBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor grad_input = zeros(input_shape_, {g[0].dtype(), g[0].device()});
    detail::copy_into(grad_input.slice(dim_, start_, end_, step_), g[0]);
    return {grad_input};
  }

 private:
  Shape input_shape_;
  int dim_;
  int64_t start_, end_, step_;
};

class ExpandBackward : public Node {
 public:
  explicit ExpandBackward(Shape input_shape) : input_shape_(std::move(input_shape)) {}
  std::string name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    return {sum_to(g[0], input_shape_)};
  }

 private:
  Shape input_shape_;
};

// contiguous, clone, to(dtype), to(device): the gradient goes back in the input's dtype and
// device.
class CopyBackward : public Node {
 public:
  CopyBackward(DType input_dtype, Device input_device)
      : input_dtype_(input_dtype), input_device_(input_device) {}
  std::string name() const override { return "CopyBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    return {g[0].to(input_device_).to(input_dtype_)};
  }

 private:
  DType input_dtype_;
  Device input_device_;
};

template <typename NodeType, typename... Args>
void record(const Tensor& input, Tensor& output, Args&&... args) {
  if (!needs_grad({input})) return;
  connect(std::make_shared<NodeType>(std::forward<Args>(args)...), {input}, {&output});
}

}  // namespace

Tensor Tensor::view(const Shape& new_shape) const {
  const Shape target = infer_shape(new_shape, numel(), "view");
  Shape new_strides;
  EMBER_CHECK(view_strides(shape(), strides(), target, new_strides), "view: a tensor of shape ",
              shape_str(shape()), " and strides ", shape_str(strides()), " cannot be viewed as ",
              shape_str(target), " without a copy; use reshape");
  Tensor out = make_view(*this, target, new_strides, offset());
  record<ReshapeBackward>(*this, out, shape());
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  const Shape target = infer_shape(new_shape, numel(), "reshape");
  Shape new_strides;
  if (view_strides(shape(), strides(), target, new_strides)) return view(target);
  return contiguous().view(target);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int s = normalize_dim(start_dim, dim(), "flatten"),
            e = normalize_dim(end_dim, dim(), "flatten");
  EMBER_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape target(shape().begin(), shape().begin() + s);
  int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= shape()[d];
  target.push_back(merged);
  target.insert(target.end(), shape().begin() + e + 1, shape().end());
  return reshape(target);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: got ", dims.size(),
              " dims for a tensor with ", dim(), " dimensions");
  std::vector<int64_t> order;
  std::vector<bool> used(dims.size(), false);
  Shape new_shape, new_strides;
  for (int64_t d : dims) {
    const int nd = normalize_dim(d, dim(), "permute");
    EMBER_CHECK(!used[nd], "permute: dim ", d, " repeats in the permutation");
    used[nd] = true;
    order.push_back(nd);
    new_shape.push_back(shape()[nd]);
    new_strides.push_back(strides()[nd]);
  }
  Tensor out = make_view(*this, new_shape, new_strides, offset());
  record<PermuteBackward>(*this, out, order);
  return out;
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  if (dim() == 0) return *this;
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(dim0, dim(), "transpose")],
            order[normalize_dim(dim1, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::t() const {
  EMBER_CHECK(dim() <= 2, "t: expected a tensor with at most 2 dimensions, got ",
              shape_str(shape()), "; use transpose(dim0, dim1)");
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  const int nd = normalize_dim(d, dim(), "slice");
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t size = shape()[nd];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape new_shape = shape(), new_strides = strides();
  new_shape[nd] = (end - start + step - 1) / step;
  new_strides[nd] = strides()[nd] * step;
  Tensor out = make_view(*this, new_shape, new_strides, offset() + start * strides()[nd]);
  record<SliceBackward>(*this, out, shape(), nd, start, end, step);
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  const int nd = normalize_dim(d, dim(), "narrow");
  const int64_t size = shape()[nd];
  if (start < 0) start += size;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= size, "narrow: start ", start,
              " and length ", length, " do not fit dim ", d, " of size ", size, " (shape ",
              shape_str(shape()), ")");
  return slice(nd, start, start + length, 1);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  const int nd = normalize_dim(d, dim(), "select");
  const int64_t size = shape()[nd];
  EMBER_CHECK(index >= -size && index < size, "select: index ", index, " is out of range for dim ",
              d, " of size ", size);
  if (index < 0) index += size;
  return narrow(nd, index, 1).squeeze(nd);
}

Tensor Tensor::expand(const Shape& target_in) const {
  EMBER_CHECK(static_cast<int64_t>(target_in.size()) >= dim(), "expand: target ",
              shape_str(target_in), " has fewer dimensions than the tensor ", shape_str(shape()));
  Shape target = target_in;
  const size_t lead = target.size() - shape().size();
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      EMBER_CHECK(i >= lead, "expand: -1 is not allowed for a new leading dimension");
      target[i] = shape()[i - lead];
    }
    if (i >= lead)
      EMBER_CHECK(shape()[i - lead] == target[i] || shape()[i - lead] == 1, "expand: size ",
                  shape()[i - lead], " of dim ", i - lead, " cannot expand to ", target[i],
                  " (tensor ", shape_str(shape()), ", target ", shape_str(target_in), ")");
  }
  if (target == shape()) return *this;
  Tensor out = make_view(*this, target, expanded_strides(shape(), strides(), target), offset());
  record<ExpandBackward>(*this, out, shape());
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  const int nd = normalize_dim(d, dim(), "squeeze");
  if (dim() == 0 || shape()[nd] != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + nd);
  return view(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  const int nd = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + nd, 1);
  return view(s);
}

// ---- copies ----

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), {dtype(), device()});
  detail::copy_into(out, detach());
  record<CopyBackward>(*this, out, dtype(), device());
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  EMBER_CHECK(!(device().is_cuda() && target == DType::F64),
              "to(f64): f64 tensors are CPU-only in ember; move to the CPU first");
  Tensor out = empty(shape(), {target, device()});
  detail::copy_into(out, detach());
  if (is_floating(target)) record<CopyBackward>(*this, out, dtype(), device());
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  EMBER_CHECK(!(target.is_cuda() && dtype() == DType::F64), "to(", target.str(),
              "): f64 tensors are CPU-only in ember (they exist for gradient checks); convert "
              "to f32 first");
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), {dtype(), target});
  const size_t bytes = static_cast<size_t>(numel()) * element_size();
  if (bytes) {
    if (device().is_cpu()) {
      runtime_for(target).copy_bytes(target.index, kernels::CopyKind::HostToDevice, out.data_ptr(),
                                     src.data_ptr(), bytes);
    } else if (target.is_cpu()) {
      runtime_for(device()).copy_bytes(device().index, kernels::CopyKind::DeviceToHost,
                                       out.data_ptr(), src.data_ptr(), bytes);
    } else {  // between two GPUs: through the host
      Tensor staged = src.to(Device::cpu());
      runtime_for(target).copy_bytes(target.index, kernels::CopyKind::HostToDevice, out.data_ptr(),
                                     staged.data_ptr(), bytes);
    }
  }
  record<CopyBackward>(*this, out, dtype(), device());
  return out;
}

}  // namespace ember
