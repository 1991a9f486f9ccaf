// Gathering parameters into flat buffers (see flat_parameters.h).
#include "layers/flat_parameters.h"

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"

namespace ember::nn {

const ParameterSlot& ParameterLayout::slot(const std::string& name) const {
  for (const ParameterSlot& s : slots_)
    if (s.name == name) return s;
  throw Error(str_cat("ParameterLayout: no parameter named '", name, "'"));
}

int64_t ParameterLayout::numel() const {
  int64_t n = 0;
  for (const FlatBuffer& b : buffers_) n += b.params.numel();
  return n;
}

ParameterLayout flatten(const std::vector<std::pair<std::string, Tensor>>& parameters,
                        const std::vector<int>& groups) {
  EMBER_CHECK(groups.size() == parameters.size(), "flatten: ", groups.size(), " groups for ",
              parameters.size(), " parameters");
  // Assign each parameter a buffer (by dtype and device) and an offset in it.
  std::vector<FlatBuffer> buffers;
  std::vector<int64_t> sizes;
  std::vector<ParameterSlot> slots;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& [name, p] = parameters[i];
    int b = 0;
    while (b < static_cast<int>(buffers.size()) &&
           (buffers[b].dtype != p.dtype() || buffers[b].device != p.device()))
      ++b;
    if (b == static_cast<int>(buffers.size())) {
      buffers.push_back({p.dtype(), p.device(), Tensor(), Tensor()});
      sizes.push_back(0);
    }
    slots.push_back({name, b, sizes[b], p.numel(), p.shape(), groups[i]});
    sizes[b] += p.numel();
  }
  for (size_t b = 0; b < buffers.size(); ++b) {
    buffers[b].params = empty({sizes[b]}, {buffers[b].dtype, buffers[b].device});
    buffers[b].grads = zeros({sizes[b]}, {buffers[b].dtype, buffers[b].device});
  }
  // Copy values and gradients in, then rebind each parameter to its slice.
  NoGrad no_grad;
  for (size_t i = 0; i < parameters.size(); ++i) {
    Tensor p = parameters[i].second;
    const ParameterSlot& s = slots[i];
    Tensor value = buffers[s.buffer].params.narrow(0, s.offset, s.numel).view(s.shape);
    Tensor grad = buffers[s.buffer].grads.narrow(0, s.offset, s.numel).view(s.shape);
    value.copy_(p.detach());
    if (p.grad().defined()) grad.copy_(p.grad());
    p.set_data(value);
    p.set_grad(grad);
  }
  return ParameterLayout(std::move(slots), std::move(buffers));
}

}  // namespace ember::nn
