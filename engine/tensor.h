// Tensor: a cheap, shared handle to an n-dimensional view of a Storage.
//
// A Tensor is (storage, shape, strides, offset, dtype) plus autograd state. Copying a Tensor
// copies the handle, not the data: both handles see the same elements, like two Python
// references to one torch.Tensor. Views (reshape, transpose, narrow, expand, ...) make a new
// handle on the same storage; contiguous() and clone() copy.
//
// Math lives in free functions (engine/ops.h) and operators; this class holds what is
// intrinsic to a tensor: its metadata, views, copies between dtypes and devices, reading values
// back, and the autograd interface (requires_grad, grad, backward, hooks).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace ember {

class Node;
struct AutogradMeta;
class Tensor;

// A hook on a tensor's gradient: sees it, and may return a replacement (std::nullopt keeps it).
using GradHook = std::function<std::optional<Tensor>(const Tensor& grad)>;
// A hook on a leaf that fires once its .grad holds the final, accumulated gradient of this
// backward pass; it receives the leaf itself.
using PostAccumulateHook = std::function<void(const Tensor& leaf)>;

// What a created tensor is: dtype, device, and whether autograd tracks it. Converts from a
// DType or a Device, so zeros({2, 3}, DType::F64) and zeros({2}, Device::cuda()) both read well.
struct TensorOptions {
  DType dtype = DType::F32;
  Device device = Device::cpu();
  bool requires_grad = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}
  TensorOptions(Device dev) : device(dev) {}
  TensorOptions(DType d, Device dev) : dtype(d), device(dev) {}
  TensorOptions with_requires_grad(bool r = true) const {
    TensorOptions o = *this;
    o.requires_grad = r;
    return o;
  }
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements, from the start of storage
  DType dtype = DType::F32;
  std::unique_ptr<AutogradMeta> autograd;  // null: no gradient state

  ~TensorImpl();
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (like an empty optional)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }

  // ---- metadata ----
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t stride(int64_t dim) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Address of the first element (storage data + offset). On CUDA this is a device pointer.
  void* data_ptr() const;
  // Typed pointer; the dtype must match T exactly.
  template <typename T>
  T* data() const {
    EMBER_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()),
                ">: tensor has dtype ", dtype_name(dtype()));
    return static_cast<T*>(data_ptr());
  }

  // ---- views (share storage; differentiable) ----
  Tensor view(const Shape& shape) const;     // error if strides do not allow it
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-d tensor
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  // Elements start, start + step, ... below end of `dim` (end clamped to the size).
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor expand(const Shape& shape) const;          // -1 keeps a size; new leading dims allowed
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;

  // ---- copies ----
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a new, contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor to(Device device, DType dtype) const { return to(device).to(dtype); }
  Tensor cpu() const { return to(Device::cpu()); }

  // ---- values back on the host ----
  // The single element, converted to T (tensor of one element, any shape).
  template <typename T>
  T item() const;
  // All elements in row-major order, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- in place (never recorded by autograd; an error on tensors that require grad while
  // gradients are being recorded, as in PyTorch) ----
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // broadcasts src; converts dtype; crosses devices
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
  Tensor& mul_(double factor);

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;                // undefined until a backward pass reaches this leaf
  void set_grad(const Tensor& grad);  // e.g. a view into a flat gradient buffer; undefined clears
  std::shared_ptr<Node> grad_fn() const;
  int output_nr() const;  // which output of grad_fn this tensor is
  Tensor detach() const;  // same storage, no autograd history
  // Rebinds this leaf to src's elements (storage, shape, strides, offset, dtype), keeping its
  // identity and autograd state, so every handle to it sees the new data: PyTorch's
  // `param.data = src`. How a module moves its parameters into one flat buffer or onto another
  // device without invalidating the handles an optimizer holds. A gradient that no longer
  // matches (shape, dtype or device) is dropped.
  void set_data(const Tensor& src);
  // Backpropagates from this tensor; `gradient` defaults to 1 for a one-element tensor.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  // Hooks; each returns an id for remove_hook.
  int register_hook(GradHook hook) const;
  int register_post_accumulate_grad_hook(PostAccumulateHook hook) const;  // leaves only
  void remove_hook(int id) const;
  void retain_grad() const;  // keep .grad on a non-leaf tensor

  std::string str() const;  // values and metadata, for printing
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  TensorImpl& impl() const {
    EMBER_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- creation ----
Tensor empty(const Shape& shape, const TensorOptions& options = {});
Tensor zeros(const Shape& shape, const TensorOptions& options = {});
Tensor ones(const Shape& shape, const TensorOptions& options = {});
Tensor full(const Shape& shape, double value, const TensorOptions& options = {});
Tensor scalar_tensor(double value, const TensorOptions& options = {});  // 0-d
Tensor arange(double end, const TensorOptions& options = {});
Tensor arange(double start, double end, double step = 1, const TensorOptions& options = {});
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// A tensor holding `values` (row-major) with dtype_of<T>(); shape defaults to 1-d.
template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape = {-1},
              Device device = Device::cpu());

// ---- a tensor of raw host values, used by item/to_vector/tensor ----
// Copies numel elements of dtype `dtype` from host memory into a new tensor on `device`.
Tensor from_host(const void* values, DType dtype, const Shape& shape, Device device);
// Copies a tensor's elements to host memory (row-major), converted to `dtype`.
void to_host(const Tensor& t, DType dtype, void* out);

template <typename T>
T Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()), " has ", numel(),
              " elements, expected exactly one");
  T value;
  to_host(*this, dtype_of<T>(), &value);
  return value;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> values(static_cast<size_t>(numel()));
  to_host(*this, dtype_of<T>(), values.data());
  return values;
}

template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, Device device) {
  const Shape s = infer_shape(shape, static_cast<int64_t>(values.size()), "tensor");
  return from_host(values.data(), dtype_of<T>(), s, device);
}

}  // namespace ember
