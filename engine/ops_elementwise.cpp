// Elementwise ops and their backward rules.
//   unary y = f(x):           dx = dy * f'(x)   (one fused kernel, kernels/elementwise_math.h)
//   a + b, a - b:             da = sum_to(dy), db = sum_to(+-dy)
//   a * b:                    da = sum_to(dy * b), db = sum_to(dy * a)
//   a / b:                    da = sum_to(dy / b), db = sum_to(-dy * a / b^2)
//   maximum(a, b):            dy goes to the larger input, half to each on a tie (as PyTorch)
//   where(c, a, b):           da = sum_to(c ? dy : 0), db = sum_to(c ? 0 : dy)
//   dropout:                  dx = dy * mask
// sum_to undoes broadcasting: a gradient of the broadcast shape is summed back to the
// operand's shape.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"
#include "engine/random.h"
#include "kernels/philox.h"

namespace ember {

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

// ---- unary ----

class UnaryBackward : public Node {
 public:
  UnaryBackward(const char* op_name, UnaryOp op, Tensor x, Tensor y, double alpha, double beta)
      : op_name_(op_name),
        op_(op),
        x_(std::move(x)),
        y_(std::move(y)),
        alpha_(alpha),
        beta_(beta) {}
  std::string name() const override { return std::string(op_name_) + "Backward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = empty_like(x_);
    detail::kernels_of(x_).unary_backward(op_, x_.dtype(), x_.numel(), x_.data_ptr(), y_.data_ptr(),
                                          dy.data_ptr(), dx.data_ptr(), alpha_, beta_,
                                          detail::stream_of(x_));
    return {dx};
  }
  void release_saved() override { x_ = y_ = Tensor(); }

 private:
  const char* op_name_;
  UnaryOp op_;
  Tensor x_, y_;  // contiguous input and output, detached
  double alpha_, beta_;
};

Tensor unary(const char* name, UnaryOp op, const Tensor& x, double alpha = 0, double beta = 0) {
  detail::check_defined(name, x);
  detail::check_float(name, x);
  Tensor input = x.detach().contiguous();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  detail::kernels_of(x).unary(op, x.dtype(), x.numel(), input.data_ptr(), y.data_ptr(), alpha, beta,
                              detail::stream_of(x));
  if (needs_grad({x}))
    connect(std::make_shared<UnaryBackward>(name, op, input, y.detach(), alpha, beta), {x}, {&y});
  return y;
}

// ---- binary ----

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Maximum:
      return "maximum";
    case BinaryOp::Minimum:
      return "minimum";
    case BinaryOp::Eq:
      return "eq";
    case BinaryOp::Ne:
      return "ne";
    case BinaryOp::Lt:
      return "lt";
    case BinaryOp::Le:
      return "le";
    case BinaryOp::Gt:
      return "gt";
    case BinaryOp::Ge:
      return "ge";
  }
  return "binary";
}

// Checks the operands of a binary op; returns the broadcast shape.
Shape check_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  detail::check_defined(name, a);
  detail::check_defined(name, b);
  detail::check_same_device(name, a, b);
  detail::check_same_dtype(name, a, b);
  const DType dt = a.dtype();
  if (!kernels::is_comparison(op)) {
    const bool integer = dt == DType::I32 || dt == DType::I64;
    if (!(integer && op != BinaryOp::Div)) detail::check_float(name, a);
  } else {
    EMBER_CHECK(dt != DType::BF16 && dt != DType::F16, name, ": comparisons of ", dtype_name(dt),
                " are not implemented yet; convert with .to(DType::F32)");
  }
  return broadcast_shapes(a.shape(), b.shape(), name);
}

// The broadcasting kernel call into `out` (contiguous, of the broadcast shape). No autograd.
void launch_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  const Shape& shape = out.shape();
  detail::Iteration it = detail::make_iteration(
      shape, {detail::strides_for(a, shape), detail::strides_for(b, shape), out.strides()},
      binary_name(op));
  detail::kernels_of(a).binary(op, a.dtype(), it.shape, a.data_ptr(), it.strides[0], b.data_ptr(),
                               it.strides[1], out.data_ptr(), detail::stream_of(a));
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  const Shape shape = check_binary(op, a, b);
  Tensor out = empty(shape, {kernels::is_comparison(op) ? DType::U8 : a.dtype(), a.device()});
  launch_binary(op, a, b, out);
  return out;
}

class BinaryBackward : public Node {
 public:
  BinaryBackward(BinaryOp op, Tensor a, Tensor b, Shape a_shape, Shape b_shape)
      : op_(op),
        a_(std::move(a)),
        b_(std::move(b)),
        a_shape_(std::move(a_shape)),
        b_shape_(std::move(b_shape)) {}
  std::string name() const override { return std::string(binary_name(op_)) + "Backward"; }

  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    const Tensor& dy = g[0];
    Tensor da, db;
    const bool want_a = input_needs_grad(0), want_b = input_needs_grad(1);
    switch (op_) {
      case BinaryOp::Add:
        if (want_a) da = dy;
        if (want_b) db = dy;
        break;
      case BinaryOp::Sub:
        if (want_a) da = dy;
        if (want_b) db = neg(dy);
        break;
      case BinaryOp::Mul:
        if (want_a) da = mul(dy, b_);
        if (want_b) db = mul(dy, a_);
        break;
      case BinaryOp::Div:
        if (want_a) da = div(dy, b_);
        if (want_b) db = neg(div(mul(dy, a_), mul(b_, b_)));
        break;
      case BinaryOp::Maximum:
      case BinaryOp::Minimum: {
        // share of dy that goes to a: 1 where a wins, 1/2 on a tie, 0 where b wins
        const BinaryOp a_wins = op_ == BinaryOp::Maximum ? BinaryOp::Gt : BinaryOp::Lt;
        Tensor share = add(binary_forward(a_wins, a_, b_).to(dy.dtype()),
                           mul(binary_forward(BinaryOp::Eq, a_, b_).to(dy.dtype()), 0.5));
        if (want_a) da = mul(dy, share);
        if (want_b) db = mul(dy, add(neg(share), 1.0));
        break;
      }
      default:
        break;
    }
    return {da.defined() ? sum_to(da, a_shape_) : da, db.defined() ? sum_to(db, b_shape_) : db};
  }
  void release_saved() override { a_ = b_ = Tensor(); }

 private:
  BinaryOp op_;
  Tensor a_, b_;  // detached inputs, kept only by the ops whose gradient reads them
  Shape a_shape_, b_shape_;
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(op, a, b);
  if (needs_grad({a, b})) {
    const bool keep_inputs = op != BinaryOp::Add && op != BinaryOp::Sub;
    connect(
        std::make_shared<BinaryBackward>(op, keep_inputs ? a.detach() : Tensor(),
                                         keep_inputs ? b.detach() : Tensor(), a.shape(), b.shape()),
        {a, b}, {&out});
  }
  return out;
}

// ---- where ----

class WhereBackward : public Node {
 public:
  WhereBackward(Tensor cond, Shape a_shape, Shape b_shape)
      : cond_(std::move(cond)), a_shape_(std::move(a_shape)), b_shape_(std::move(b_shape)) {}
  std::string name() const override { return "WhereBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor zero = detail::scalar_like(g[0], 0);
    Tensor da, db;
    if (input_needs_grad(0)) da = sum_to(where(cond_, g[0], zero), a_shape_);
    if (input_needs_grad(1)) db = sum_to(where(cond_, zero, g[0]), b_shape_);
    return {da, db};
  }
  void release_saved() override { cond_ = Tensor(); }

 private:
  Tensor cond_;
  Shape a_shape_, b_shape_;
};

// ---- dropout ----

class DropoutBackward : public Node {
 public:
  explicit DropoutBackward(Tensor mask) : mask_(std::move(mask)) {}
  std::string name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {mul(g[0], mask_)}; }
  void release_saved() override { mask_ = Tensor(); }

 private:
  Tensor mask_;  // 0 or 1/(1-p)
};

}  // namespace

// ---- in place, for Tensor::add_ and mul_ (not recorded) ----
// Elementwise kernels read element i before they write it, so a contiguous tensor can be its
// own output: no temporary, one pass. Anything else (a strided view, an operand that shares
// the storage in another layout) is computed aside and copied in.

void detail::binary_inplace(BinaryOp op, const Tensor& self, const Tensor& other) {
  const Shape shape = check_binary(op, self, other);
  EMBER_CHECK(shape == self.shape(), binary_name(op), "_: ", shape_str(other.shape()),
              " does not broadcast to the updated tensor's shape ", shape_str(self.shape()));
  if (self.is_contiguous() && other.storage() != self.storage()) {
    launch_binary(op, self, other, self);
  } else {
    detail::copy_into(self, binary_forward(op, self, other));
  }
}

void detail::unary_inplace(UnaryOp op, const Tensor& self, double alpha) {
  detail::check_float("mul_", self);
  if (self.is_contiguous()) {
    detail::kernels_of(self).unary(op, self.dtype(), self.numel(), self.data_ptr(), self.data_ptr(),
                                   alpha, 0, detail::stream_of(self));
  } else {
    NoGrad no_grad;
    detail::copy_into(self, unary("mul", op, self, alpha));
  }
}

// ---- public ops ----

Tensor neg(const Tensor& x) {
  return unary("neg", UnaryOp::Neg, x);
}
Tensor exp(const Tensor& x) {
  return unary("exp", UnaryOp::Exp, x);
}
Tensor log(const Tensor& x) {
  return unary("log", UnaryOp::Log, x);
}
Tensor sqrt(const Tensor& x) {
  return unary("sqrt", UnaryOp::Sqrt, x);
}
Tensor rsqrt(const Tensor& x) {
  return unary("rsqrt", UnaryOp::Rsqrt, x);
}
Tensor abs(const Tensor& x) {
  return unary("abs", UnaryOp::Abs, x);
}
Tensor relu(const Tensor& x) {
  return unary("relu", UnaryOp::Relu, x);
}
Tensor sigmoid(const Tensor& x) {
  return unary("sigmoid", UnaryOp::Sigmoid, x);
}
Tensor tanh(const Tensor& x) {
  return unary("tanh", UnaryOp::Tanh, x);
}
Tensor pow(const Tensor& x, double exponent) {
  return unary("pow", UnaryOp::PowScalar, x, exponent);
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  EMBER_CHECK(!std::isnan(lo) && !std::isnan(hi), "clamp: bounds must not be NaN");
  return unary("clamp", UnaryOp::Clamp, x, lo, hi);
}
Tensor add(const Tensor& x, double value) {
  return unary("add", UnaryOp::AddScalar, x, value);
}
Tensor mul(const Tensor& x, double factor) {
  return unary("mul", UnaryOp::MulScalar, x, factor);
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") return unary("gelu", UnaryOp::GeluErf, x);
  if (approximate == "tanh") return unary("gelu", UnaryOp::GeluTanh, x);
  throw Error(str_cat("gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\""));
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Maximum, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Minimum, a, b);
}

Tensor operator/(const Tensor& a, double b) {
  return div(a, detail::scalar_like(a, b));
}
Tensor operator/(double a, const Tensor& b) {
  return div(detail::scalar_like(b, a), b);
}

Tensor eq(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Eq, a, b);
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ne, a, b);
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Lt, a, b);
}
Tensor le(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Le, a, b);
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Gt, a, b);
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ge, a, b);
}
namespace {

// The representable range of an integer dtype.
void integer_range(DType dt, double& lo, double& hi) {
  switch (dt) {
    case DType::U8:
      lo = 0, hi = 255;
      return;
    case DType::I32:
      lo = -2147483648.0, hi = 2147483647.0;
      return;
    default:
      lo = -9223372036854775808.0, hi = 9223372036854775807.0;
      return;
  }
}

// Tensor (op) scalar. A float tensor compares with the scalar in its own dtype, as PyTorch
// does. An integer tensor must compare exactly with any real scalar, so the scalar becomes the
// integer bound that gives the same answer: x < 1.5 is x < 2, x <= 1.5 is x <= 1, x == 1.5 is
// never true, and a bound beyond the dtype's range makes the answer the same everywhere.
Tensor compare_scalar(BinaryOp op, const Tensor& a, double b) {
  detail::check_defined(binary_name(op), a);
  const DType dt = a.dtype();
  const bool integer = dt == DType::U8 || dt == DType::I32 || dt == DType::I64;
  if (!integer || std::isnan(b)) return binary_forward(op, a, detail::scalar_like(a, b));
  auto constant = [&](bool value) {
    return full(a.shape(), value ? 1 : 0, {DType::U8, a.device()});
  };
  double bound = b;
  switch (op) {
    case BinaryOp::Eq:
    case BinaryOp::Ne:
      if (std::floor(b) != b) return constant(op == BinaryOp::Ne);
      break;
    case BinaryOp::Lt:
    case BinaryOp::Ge:
      bound = std::ceil(b);
      break;
    case BinaryOp::Le:
    case BinaryOp::Gt:
      bound = std::floor(b);
      break;
    default:
      break;
  }
  double lo, hi;
  integer_range(dt, lo, hi);
  if (bound < lo || bound > hi) {
    const bool above = bound > hi;  // every element is below the bound
    switch (op) {
      case BinaryOp::Eq:
        return constant(false);
      case BinaryOp::Ne:
        return constant(true);
      case BinaryOp::Lt:
      case BinaryOp::Le:
        return constant(above);
      default:
        return constant(!above);  // Gt, Ge
    }
  }
  return binary_forward(op, a, detail::scalar_like(a, bound));
}

}  // namespace

Tensor eq(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Eq, a, b);
}
Tensor ne(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Ne, a, b);
}
Tensor lt(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Lt, a, b);
}
Tensor le(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Le, a, b);
}
Tensor gt(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Gt, a, b);
}
Tensor ge(const Tensor& a, double b) {
  return compare_scalar(BinaryOp::Ge, a, b);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const char* name = "where";
  detail::check_defined(name, cond);
  detail::check_defined(name, a);
  detail::check_defined(name, b);
  detail::check_dtype(name, cond, DType::U8, "the condition");
  detail::check_same_device(name, cond, a);
  detail::check_same_device(name, a, b);
  detail::check_same_dtype(name, a, b);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), name), b.shape(), name);
  Tensor out = empty(shape, {a.dtype(), a.device()});
  if (out.numel() > 0) {
    detail::Iteration it =
        detail::make_iteration(shape,
                               {detail::strides_for(cond, shape), detail::strides_for(a, shape),
                                detail::strides_for(b, shape), out.strides()},
                               name);
    detail::kernels_of(a).where(a.dtype(), it.shape, static_cast<const uint8_t*>(cond.data_ptr()),
                                it.strides[0], a.data_ptr(), it.strides[1], b.data_ptr(),
                                it.strides[2], out.data_ptr(), detail::stream_of(a));
  }
  if (needs_grad({a, b}))
    connect(std::make_shared<WhereBackward>(cond.detach(), a.shape(), b.shape()), {a, b}, {&out});
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* generator) {
  EMBER_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  detail::check_float("dropout", x);
  Tensor input = x.detach().contiguous();
  Tensor y = empty(x.shape(), {x.dtype(), x.device()});
  Tensor mask = empty(x.shape(), {x.dtype(), x.device()});
  Generator& g = generator ? *generator : default_generator();
  const Generator::Draw draw = g.reserve(kernels::philox_words_for_uniform(x.numel()));
  detail::kernels_of(x).dropout(x.dtype(), input.data_ptr(), y.data_ptr(), mask.data_ptr(),
                                x.numel(), p, draw.seed, draw.offset, detail::stream_of(x));
  if (needs_grad({x})) connect(std::make_shared<DropoutBackward>(mask), {x}, {&y});
  return y;
}

}  // namespace ember
