// ParamGroup's flags and the in-place zero_grad shared by every optimizer.
#include "layers/optimizer.h"

#include "engine/runtime.h"  // kernels_for, stream_for

namespace ember::optim {

bool ParamGroup::allow_data_parallelism() const {
  return flag("allow_data_parallelism", 1.0) != 0;
}

double ParamGroup::flag(const std::string& name, double fallback) const {
  const auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

bool directly_follows(const Tensor& prev, const Tensor& next) {
  return prev.storage() == next.storage() && prev.dtype() == next.dtype() && prev.is_contiguous() &&
         next.is_contiguous() && next.offset() == prev.offset() + prev.numel();
}

// Gradients that lie back to back (a flat gradient buffer) are zeroed with one fill per run.
void Optimizer::zero_grad() {
  std::vector<Tensor> grads;
  for (const ParamGroup& group : param_groups())
    for (const Tensor& p : group.params)
      if (p.grad().defined()) grads.push_back(p.grad());
  size_t begin = 0;
  while (begin < grads.size()) {
    const Tensor& first = grads[begin];
    size_t end = begin + 1;
    int64_t n = first.numel();
    if (first.is_contiguous()) {
      while (end < grads.size() && directly_follows(grads[end - 1], grads[end]))
        n += grads[end++].numel();
      if (n > 0)
        kernels_for(first.device())
            .fill(first.dtype(), first.data_ptr(), n, 0.0, stream_for(first.device()));
    } else {
      first.detach().zero_();  // detach: a gradient that itself requires grad is zeroed too
    }
    begin = end;
  }
}

}  // namespace ember::optim
