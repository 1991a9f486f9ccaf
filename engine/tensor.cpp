// Tensor's core: metadata, creation, host transfers, in-place updates, the autograd interface
// and printing. Views and copies with their backward rules are in ops_view.cpp.
#include "engine/tensor.h"

#include <atomic>  // hook ids
#include <cmath>
#include <cstring>  // memcpy
#include <iomanip>
#include <sstream>

#include "engine/autograd.h"      // AutogradMeta, Node, run_backward
#include "engine/ops.h"           // add, mul for add_
#include "engine/ops_internal.h"  // checks, copy_into
#include "engine/runtime.h"       // kernels_for, runtime_for

namespace ember {

TensorImpl::~TensorImpl() = default;

// ---- metadata ----

int64_t Tensor::size(int64_t d) const {
  return shape()[normalize_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  return strides()[normalize_dim(d, dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;  // any stride works for a size-1 dim
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl().storage->data()) +
         static_cast<size_t>(impl().offset) * element_size();
}

// ---- creation ----

namespace {
Tensor make_tensor(const Shape& shape, const TensorOptions& options) {
  for (int64_t s : shape)
    EMBER_CHECK(s >= 0, "cannot create a tensor of shape ", shape_str(shape),
                ": sizes must be non-negative");
  EMBER_CHECK(!(options.device.is_cuda() && options.dtype == DType::F64),
              "f64 tensors are CPU-only in ember (they exist for gradient checks); create this "
              "tensor as f32 on ",
              options.device.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(
      static_cast<size_t>(shape_numel(shape)) * dtype_size(options.dtype), options.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = options.dtype;
  Tensor t(std::move(impl));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}
}  // namespace

Tensor empty(const Shape& shape, const TensorOptions& options) {
  return make_tensor(shape, options);
}

Tensor full(const Shape& shape, double value, const TensorOptions& options) {
  TensorOptions plain = options.with_requires_grad(false);
  Tensor t = make_tensor(shape, plain);
  kernels_for(t.device()).fill(t.dtype(), t.data_ptr(), t.numel(), value, detail::stream_of(t));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor zeros(const Shape& shape, const TensorOptions& options) {
  return full(shape, 0, options);
}
Tensor ones(const Shape& shape, const TensorOptions& options) {
  return full(shape, 1, options);
}
Tensor scalar_tensor(double value, const TensorOptions& options) {
  return full({}, value, options);
}

Tensor arange(double end, const TensorOptions& options) {
  return arange(0, end, 1, options);
}

Tensor arange(double start, double end, double step, const TensorOptions& options) {
  EMBER_CHECK(step != 0 && std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
              "arange: need finite start/end and a non-zero step, got ", start, ", ", end, ", ",
              step);
  const double count = std::ceil((end - start) / step);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor t = make_tensor({n}, options.with_requires_grad(false));
  EMBER_CHECK(t.dtype() != DType::BF16 && t.dtype() != DType::F16,
              "arange: not available for 16-bit floats; create f32 and convert");
  kernels_for(t.device()).arange(t.dtype(), t.data_ptr(), n, start, step, detail::stream_of(t));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), {t.dtype(), t.device()});
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), {t.dtype(), t.device()});
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), {t.dtype(), t.device()});
}
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, {t.dtype(), t.device()});
}

// ---- host transfers ----

Tensor from_host(const void* values, DType dtype, const Shape& shape, Device device) {
  Tensor host = make_tensor(shape, {dtype, Device::cpu()});
  if (host.numel()) std::memcpy(host.data_ptr(), values, host.numel() * dtype_size(dtype));
  return device.is_cpu() ? host : host.to(device);
}

void to_host(const Tensor& t, DType dtype, void* out) {
  Tensor host = t.detach().to(Device::cpu());
  if (host.dtype() != dtype || !host.is_contiguous()) {
    Tensor converted = empty(host.shape(), {dtype, Device::cpu()});
    detail::copy_into(converted, host);
    host = converted;
  }
  if (host.numel()) std::memcpy(out, host.data_ptr(), host.numel() * dtype_size(dtype));
}

// ---- in place ----

Tensor& Tensor::zero_() {
  return fill_(0);
}

Tensor& Tensor::fill_(double value) {
  detail::check_inplace_allowed("fill_", *this);
  if (is_contiguous()) {
    kernels_for(device()).fill(dtype(), data_ptr(), numel(), value, detail::stream_of(*this));
  } else {
    detail::copy_into(*this, scalar_tensor(value, {dtype(), device()}));
  }
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_inplace_allowed("copy_", *this);
  detail::check_defined("copy_", src);
  detail::copy_into(*this, src.detach());
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  detail::check_inplace_allowed("add_", *this);
  NoGrad no_grad;
  Tensor addend = alpha == 1.0 ? other.detach() : mul(other.detach(), alpha);
  detail::binary_inplace(kernels::BinaryOp::Add, detach(), addend);
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  detail::check_inplace_allowed("mul_", *this);
  detail::unary_inplace(kernels::UnaryOp::MulScalar, detach(), factor);
  return *this;
}

// ---- autograd interface ----

namespace {
AutogradMeta& ensure_meta(TensorImpl& impl) {
  if (!impl.autograd) impl.autograd = std::make_unique<AutogradMeta>();
  return *impl.autograd;
}
int next_hook_id() {
  static std::atomic<int> counter{0};
  return ++counter;
}
}  // namespace

bool Tensor::requires_grad() const {
  return impl().autograd && (impl().autograd->requires_grad || impl().autograd->grad_fn);
}

Tensor& Tensor::requires_grad_(bool requires) {
  EMBER_CHECK(is_leaf(),
              "requires_grad_: only leaf tensors can be marked; this tensor was "
              "computed by ",
              grad_fn()->name(), " (use detach() first)");
  EMBER_CHECK(!requires || is_floating(dtype()),
              "requires_grad_: only floating-point tensors can require gradients, got ",
              dtype_name(dtype()));
  ensure_meta(impl()).requires_grad = requires;
  return *this;
}

bool Tensor::is_leaf() const {
  return !impl().autograd || !impl().autograd->grad_fn;
}

Tensor Tensor::grad() const {
  return impl().autograd ? impl().autograd->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined()) {
    EMBER_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
                "set_grad: gradient ", shape_str(grad.shape()), " ", dtype_name(grad.dtype()),
                " on ", grad.device().str(), " does not match tensor ", shape_str(shape()), " ",
                dtype_name(dtype()), " on ", device().str());
  }
  ensure_meta(impl()).grad = grad;
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  return impl().autograd ? impl().autograd->grad_fn : nullptr;
}

int Tensor::output_nr() const {
  return impl().autograd ? impl().autograd->output_nr : 0;
}

void Tensor::set_data(const Tensor& src) {
  EMBER_CHECK(src.defined(), "set_data: the source tensor is undefined");
  EMBER_CHECK(is_leaf(), "set_data: only leaf tensors can be rebound; this one was computed by ",
              grad_fn()->name());
  TensorImpl& self = impl();
  self.storage = src.impl().storage;
  self.shape = src.impl().shape;
  self.strides = src.impl().strides;
  self.offset = src.impl().offset;
  self.dtype = src.impl().dtype;
  const Tensor g = grad();
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype() || g.device() != device()))
    set_grad(Tensor());
}

Tensor Tensor::detach() const {
  auto alias = std::make_shared<TensorImpl>();
  alias->storage = impl().storage;
  alias->shape = impl().shape;
  alias->strides = impl().strides;
  alias->offset = impl().offset;
  alias->dtype = impl().dtype;
  return Tensor(std::move(alias));
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  EMBER_CHECK(requires_grad(),
              "backward: this tensor does not require grad (no input of the "
              "computation had requires_grad set, or it ran under NoGrad)");
  Tensor g = gradient;
  if (!g.defined()) {
    EMBER_CHECK(numel() == 1, "backward: a gradient must be given for a tensor of shape ",
                shape_str(shape()), "; only one-element tensors get the implicit gradient 1");
    g = ones(shape(), {dtype(), device()});
  }
  run_backward({*this}, {g}, retain_graph);
}

int Tensor::register_hook(GradHook hook) const {
  EMBER_CHECK(requires_grad(), "register_hook: the tensor does not require grad");
  const int id = next_hook_id();
  if (is_leaf()) {
    ensure_meta(impl()).hooks.push_back({id, std::move(hook)});
  } else {
    grad_fn()->output_hooks.push_back({output_nr(), id, std::move(hook)});
  }
  return id;
}

int Tensor::register_post_accumulate_grad_hook(PostAccumulateHook hook) const {
  EMBER_CHECK(is_leaf() && requires_grad(),
              "register_post_accumulate_grad_hook: only leaves that require grad have an "
              "accumulated gradient");
  const int id = next_hook_id();
  ensure_meta(impl()).post_accumulate_hooks.push_back({id, std::move(hook)});
  return id;
}

void Tensor::remove_hook(int id) const {
  if (!impl().autograd) return;
  AutogradMeta& meta = *impl().autograd;
  auto erase_id = [id](auto& hooks) {
    for (auto it = hooks.begin(); it != hooks.end(); ++it)
      if (it->id == id) {
        hooks.erase(it);
        return;
      }
  };
  erase_id(meta.hooks);
  erase_id(meta.post_accumulate_hooks);
  if (meta.grad_fn) erase_id(meta.grad_fn->output_hooks);
}

void Tensor::retain_grad() const {
  EMBER_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  if (is_leaf()) return;  // leaves keep .grad anyway
  AutogradMeta& meta = ensure_meta(impl());
  if (meta.retains_grad) return;
  meta.retains_grad = true;
  // The hook holds the tensor weakly: the tensor owns its grad_fn, which owns the hook.
  std::weak_ptr<TensorImpl> weak = impl_;
  register_hook([weak](const Tensor& grad) -> std::optional<Tensor> {
    if (auto impl = weak.lock()) {
      AutogradMeta& m = *impl->autograd;
      NoGrad no_grad;
      m.grad = m.grad.defined() ? add(m.grad, grad) : grad.clone();
    }
    return std::nullopt;
  });
}

// ---- printing ----

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  const int64_t n = numel();
  const int64_t shown = n <= 20 ? n : 10;
  std::vector<double> values;
  if (dtype() != DType::U8 && dtype() != DType::I32 && dtype() != DType::I64) {
    Tensor head = detach().reshape({-1}).narrow(0, 0, shown);
    values = head.to_vector<double>();
  } else {
    Tensor head = detach().reshape({-1}).narrow(0, 0, shown);
    for (int64_t v : head.to_vector<int64_t>()) values.push_back(static_cast<double>(v));
  }
  out << "tensor([";
  out << std::setprecision(6);
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  if (shown < n) out << ", ...";
  out << "], shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
      << ", device=" << device().str();
  if (requires_grad()) out << (is_leaf() ? ", requires_grad" : ", grad_fn=" + grad_fn()->name());
  out << ")";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  return out << t.str();
}

}  // namespace ember
