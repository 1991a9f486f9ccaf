// Matrix products (torch.matmul semantics) and their backward rule:
//   C = A B  =>  dA = dC B^T,  dB = A^T dC   (summed over broadcast batch dims)
//
// Operands reach the GEMM kernel without a copy whenever their layout allows: a matrix whose
// last dim is dense is passed as stored; one whose second-to-last dim is dense (a transposed
// view) is passed with the transpose flag; batch dims that step uniformly (or not at all, when
// broadcast) become one batch stride. Anything else is copied to a contiguous tensor first.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

// An operand [batch..., rows, cols] as the kernel sees it, or nothing if its layout does not
// allow that without a copy.
bool as_gemm_operand(const Tensor& t, int64_t rows, int64_t cols, kernels::GemmOperand& op) {
  const int64_t nd = t.dim();
  const int64_t row_stride = t.strides()[nd - 2], col_stride = t.strides()[nd - 1];
  if (cols == 1 || col_stride == 1) {
    op.transpose = false;
    op.ld = rows == 1 ? std::max<int64_t>(cols, 1) : row_stride;
    if (op.ld < std::max<int64_t>(cols, 1)) return false;
  } else if (rows == 1 || row_stride == 1) {
    op.transpose = true;  // stored as the transpose, cols x rows
    op.ld = cols == 1 ? std::max<int64_t>(rows, 1) : col_stride;
    if (op.ld < std::max<int64_t>(rows, 1)) return false;
  } else {
    return false;
  }
  // Batch dims: all of one uniform stride (merging from the back), or all broadcast.
  int64_t batch_stride = 0, expected = -1;
  for (int64_t d = nd - 3; d >= 0; --d) {
    const int64_t size = t.shape()[d], stride = t.strides()[d];
    if (size == 1) continue;
    if (expected < 0) {
      batch_stride = stride;
      expected = stride * size;
    } else if (stride == expected) {
      expected = stride * size;
    } else {
      return false;
    }
  }
  op.ptr = t.data_ptr();
  op.batch_stride = batch_stride;
  return true;
}

kernels::GemmOperand gemm_operand(Tensor& t, int64_t rows, int64_t cols) {
  kernels::GemmOperand op;
  if (!as_gemm_operand(t, rows, cols, op)) {
    t = t.contiguous();
    as_gemm_operand(t, rows, cols, op);
  }
  return op;
}

// a [..., m, k] x b [..., k, n] -> [broadcast(...), m, n]; both at least 2-d. No autograd.
Tensor batched_product(const Tensor& a, const Tensor& b) {
  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1];
  const int64_t n = b.shape()[b.dim() - 1];
  EMBER_CHECK(b.shape()[b.dim() - 2] == k, "matmul: shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()), " cannot be multiplied (", k, " columns vs ",
              b.shape()[b.dim() - 2], " rows)");
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape a_full = batch, b_full = batch, out_shape = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  out_shape.insert(out_shape.end(), {m, n});

  Tensor out = empty(out_shape, {a.dtype(), a.device()});
  if (out.numel() == 0) return out;
  if (k == 0) return out.zero_();
  Tensor ea = a.detach().expand(a_full), eb = b.detach().expand(b_full);
  const kernels::GemmOperand op_a = gemm_operand(ea, m, k);
  const kernels::GemmOperand op_b = gemm_operand(eb, k, n);
  const int64_t batch_count = shape_numel(batch);
  detail::kernels_of(a).gemm(a.dtype(), batch_count, m, n, k, 1.0, op_a, op_b, 0.0, out.data_ptr(),
                             n, m * n, allow_tf32(), detail::stream_of(a));
  return out;
}

// A 2-d tensor that is the transpose of a dense matrix (strides (1, rows)).
bool is_transposed_matrix(const Tensor& t) {
  return t.dim() == 2 && t.shape()[0] > 1 && t.shape()[1] > 1 && t.strides()[0] == 1 &&
         t.strides()[1] == t.shape()[0];
}

class MatmulBackward : public Node {
 public:
  MatmulBackward(Tensor a, Tensor b) : a_(std::move(a)), b_(std::move(b)) {}
  std::string name() const override { return "MatmulBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor da, db;
    if (input_needs_grad(0)) da = sum_to(batched_product(g[0], b_.transpose(-1, -2)), a_.shape());
    if (input_needs_grad(1)) {
      if (a_.dim() == 2 && is_transposed_matrix(b_)) {
        // b is the transpose of a dense matrix (Linear's weight.t()): compute dB^T = dC^T A and
        // hand back its transposed view, so that the gradient reaching the dense matrix, and
        // added onto its .grad, is dense too. dB computed as A^T dC reached the weight
        // transposed, and adding it there was a strided loop of a millisecond per step for a
        // 3136 x 128 weight.
        db = batched_product(g[0].transpose(-1, -2), a_).transpose(-1, -2);
      } else {
        db = sum_to(batched_product(a_.transpose(-1, -2), g[0]), b_.shape());
      }
    }
    return {da, db};
  }
  void release_saved() override { a_ = b_ = Tensor(); }

 private:
  Tensor a_, b_;  // detached, at least 2-d
};

// The differentiable core: both operands at least 2-d.
Tensor product(const Tensor& a, const Tensor& b) {
  Tensor out = batched_product(a, b);
  if (needs_grad({a, b}))
    connect(std::make_shared<MatmulBackward>(a.detach(), b.detach()), {a, b}, {&out});
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  const char* name = "matmul";
  detail::check_defined(name, a);
  detail::check_defined(name, b);
  detail::check_same_device(name, a, b);
  detail::check_same_dtype(name, a, b);
  detail::check_float(name, a);
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1, name, ": 0-d operands (", shape_str(a.shape()), ", ",
              shape_str(b.shape()), "); use mul for scalars");
  // A 1-d operand becomes a matrix for the product and loses that dim again afterwards.
  const bool a_vector = a.dim() == 1, b_vector = b.dim() == 1;
  Tensor out = product(a_vector ? a.unsqueeze(0) : a, b_vector ? b.unsqueeze(1) : b);
  if (a_vector) out = out.squeeze(-2);
  if (b_vector) out = out.squeeze(-1);
  return out;
}

}  // namespace ember
