// Softmax, log-softmax and the losses built on them, with their backward rules:
//   y = softmax(x):      dx = y * (dy - sum(dy * y))
//   y = log_softmax(x):  dx = dy - softmax(x) * sum(dy)
//   cross_entropy:       dlogits = (softmax(logits) - q) * dloss_row,  q the target
//                        distribution (one-hot, smoothed); the loss of each row comes from
//                        one fused kernel, and the reduction (mean/sum) is ordinary autograd.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

class SoftmaxBackward : public Node {
 public:
  SoftmaxBackward(Tensor y, int dim, bool log) : y_(std::move(y)), dim_(dim), log_(log) {}
  std::string name() const override { return log_ ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = empty_like(y_);
    const detail::AxisSplit s = detail::split_at(y_.shape(), dim_);
    detail::kernels_of(y_).softmax_backward(y_.dtype(), y_.data_ptr(), dy.data_ptr(), dx.data_ptr(),
                                            s.outer, s.axis, s.inner, log_, detail::stream_of(y_));
    return {dx};
  }
  void release_saved() override { y_ = Tensor(); }

 private:
  Tensor y_;  // forward output, contiguous, detached
  int dim_;
  bool log_;
};

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  detail::check_defined(name, x);
  detail::check_float(name, x);
  const int d = normalize_dim(dim, x.dim(), name);
  Tensor input = x.detach().contiguous();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  const detail::AxisSplit s = detail::split_at(x.shape(), d);
  if (y.numel() > 0)
    detail::kernels_of(x).softmax(x.dtype(), input.data_ptr(), y.data_ptr(), s.outer, s.axis,
                                  s.inner, log, detail::stream_of(x));
  if (needs_grad({x})) connect(std::make_shared<SoftmaxBackward>(y.detach(), d, log), {x}, {&y});
  return y;
}

// The per-row loss of the fused kernel; its gradient goes straight to the logits.
class CrossEntropyBackward : public Node {
 public:
  CrossEntropyBackward(Tensor logits, Tensor target, Tensor logsumexp,
                       const CrossEntropyOptions& options)
      : logits_(std::move(logits)),
        target_(std::move(target)),
        logsumexp_(std::move(logsumexp)),
        options_(options) {}
  std::string name() const override { return "CrossEntropyBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor grad_rows = g[0].contiguous();
    Tensor dlogits = empty_like(logits_);
    const int64_t n = logits_.shape()[0], c = logits_.shape()[1];
    detail::kernels_of(logits_).cross_entropy_backward(
        logits_.dtype(), logits_.data_ptr(), target_.data<int64_t>(), logsumexp_.data_ptr(),
        grad_rows.data_ptr(), dlogits.data_ptr(), n, c, options_.label_smoothing,
        options_.ignore_index, detail::stream_of(logits_));
    return {dlogits};
  }
  void release_saved() override { logits_ = target_ = logsumexp_ = Tensor(); }

 private:
  Tensor logits_, target_, logsumexp_;
  CrossEntropyOptions options_;
};

// Targets must be class indices in [0, c) or ignore_index. Returns how many are not ignored.
// (Reads values back to the host: on CUDA this waits for the GPU.)
int64_t check_targets(const char* name, const Tensor& target, int64_t n, int64_t c,
                      int64_t ignore_index) {
  detail::check_dtype(name, target, DType::I64, "the target");
  EMBER_CHECK(target.dim() == 1 && target.shape()[0] == n, name, ": target ",
              shape_str(target.shape()), " must be 1-d with one class index per row (", n, ")");
  Tensor ignored = eq(target, static_cast<double>(ignore_index)).to(DType::I64);
  Tensor outside =
      add(lt(target, 0.0).to(DType::I64), ge(target, static_cast<double>(c)).to(DType::I64));
  Tensor bad = mul(outside, sub(ones_like(ignored), ignored));
  const std::vector<int64_t> counts = stack({sum(bad), sum(ignored)}).to_vector<int64_t>();
  if (counts[0] > 0) {
    for (int64_t t : target.to_vector<int64_t>())
      EMBER_CHECK(t == ignore_index || (t >= 0 && t < c), name, ": target ", t,
                  " is not a class index in [0, ", c, ") nor ignore_index (", ignore_index, ")");
  }
  return n - counts[1];
}

Tensor reduce_rows(const Tensor& rows, Reduction reduction, int64_t count) {
  switch (reduction) {
    case Reduction::None:
      return rows;
    case Reduction::Sum:
      return sum(rows);
    case Reduction::Mean:
      return sum(rows) / static_cast<double>(count);
  }
  return rows;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_impl("softmax", x, dim, false);
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl("log_softmax", x, dim, true);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const CrossEntropyOptions& options) {
  const char* name = "cross_entropy";
  detail::check_defined(name, logits);
  detail::check_defined(name, target);
  detail::check_float(name, logits);
  detail::check_same_device(name, logits, target);
  EMBER_CHECK(logits.dim() == 2, name, ": logits must be [batch, classes], got ",
              shape_str(logits.shape()));
  EMBER_CHECK(options.label_smoothing >= 0 && options.label_smoothing <= 1, name,
              ": label_smoothing must be in [0, 1], got ", options.label_smoothing);
  const int64_t n = logits.shape()[0], c = logits.shape()[1];
  EMBER_CHECK(c > 0, name, ": logits have no classes");
  const int64_t count = check_targets(name, target, n, c, options.ignore_index);

  Tensor input = logits.detach().contiguous();
  Tensor idx = target.contiguous();
  Tensor rows = empty({n}, {logits.dtype(), logits.device()});
  Tensor logsumexp = empty({n}, {logits.dtype(), logits.device()});
  if (n > 0)
    detail::kernels_of(logits).cross_entropy(logits.dtype(), input.data_ptr(), idx.data<int64_t>(),
                                             rows.data_ptr(), logsumexp.data_ptr(), n, c,
                                             options.label_smoothing, options.ignore_index,
                                             detail::stream_of(logits));
  if (needs_grad({logits}))
    connect(std::make_shared<CrossEntropyBackward>(input, idx.detach(), logsumexp, options),
            {logits}, {&rows});
  return reduce_rows(rows, options.reduction, count);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction,
                int64_t ignore_index) {
  const char* name = "nll_loss";
  detail::check_defined(name, log_probs);
  detail::check_defined(name, target);
  detail::check_float(name, log_probs);
  detail::check_same_device(name, log_probs, target);
  EMBER_CHECK(log_probs.dim() == 2, name, ": log_probs must be [batch, classes], got ",
              shape_str(log_probs.shape()));
  const int64_t n = log_probs.shape()[0], c = log_probs.shape()[1];
  const int64_t count = check_targets(name, target, n, c, ignore_index);
  // loss_i = -log_probs[i, target_i], 0 where ignored (the gather reads class 0 there instead)
  Tensor kept = ne(target, static_cast<double>(ignore_index));
  Tensor safe_target = where(kept, target, zeros({}, {DType::I64, target.device()}));
  Tensor picked = gather(log_probs, 1, safe_target.unsqueeze(1)).squeeze(1);
  Tensor rows = neg(mul(picked, kept.to(log_probs.dtype())));
  return reduce_rows(rows, reduction, count);
}

}  // namespace ember
