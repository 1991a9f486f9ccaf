// Indexing, joining and splitting, with their backward rules.
//   index_select / embedding:  dx = zeros, then dx[index[j]] += dy[j]     (index_add)
//   gather:                    dx = zeros, then dx[index[..]] += dy[..]   (scatter_add)
//   cat:                       each input gets its slice of dy
//   stack, split, chunk:       built from unsqueeze/cat and narrow views, so their gradients
//                              come from those ops' rules
// Indices are checked to lie in range on every device before a kernel runs (on CUDA this reads
// two numbers back, which waits for the GPU): a wrong index is an error, never a silent read.
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops_internal.h"

namespace ember {

namespace {

// Throws unless every entry of `index` lies in [0, size).
void check_index_range(const char* op, const Tensor& index, int64_t size, int64_t dim) {
  if (index.numel() == 0) return;
  const std::vector<int64_t> range = stack({min(index), max(index)}).to_vector<int64_t>();
  const int64_t lo = range[0], hi = range[1];  // one read-back (one wait on a GPU)
  EMBER_CHECK(lo >= 0 && hi < size, op, ": index values must lie in [0, ", size, ") for dim ", dim,
              ", found ", (lo < 0 ? lo : hi));
}

class IndexSelectBackward : public Node {
 public:
  IndexSelectBackward(Shape input_shape, int dim, Tensor index)
      : input_shape_(std::move(input_shape)), dim_(dim), index_(std::move(index)) {}
  std::string name() const override { return "IndexSelectBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor dy = g[0].contiguous();
    Tensor dx = zeros(input_shape_, {dy.dtype(), dy.device()});
    const detail::AxisSplit s = detail::split_at(input_shape_, dim_);
    detail::kernels_of(dy).index_add(dy.dtype(), dy.data_ptr(), index_.data<int64_t>(),
                                     dx.data_ptr(), s.outer, s.axis, s.inner, index_.numel(),
                                     detail::stream_of(dy));
    return {dx};
  }
  void release_saved() override { index_ = Tensor(); }

 private:
  Shape input_shape_;
  int dim_;
  Tensor index_;  // contiguous 1-d i64
};

class GatherBackward : public Node {
 public:
  GatherBackward(Shape input_shape, int dim, Tensor index)
      : input_shape_(std::move(input_shape)), dim_(dim), index_(std::move(index)) {}
  std::string name() const override { return "GatherBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    return {detail::scatter_add_into_zeros(input_shape_, dim_, index_, g[0])};
  }
  void release_saved() override { index_ = Tensor(); }

 private:
  Shape input_shape_;
  int dim_;
  Tensor index_;
};

class CatBackward : public Node {
 public:
  CatBackward(int dim, std::vector<int64_t> sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  std::string name() const override { return "CatBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    std::vector<Tensor> grads;
    int64_t start = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      if (input_needs_grad(i))
        grads.push_back(g[0].narrow(dim_, start, sizes_[i]));
      else
        grads.emplace_back();
      start += sizes_[i];
    }
    return grads;
  }

 private:
  int dim_;
  std::vector<int64_t> sizes_;
};

}  // namespace

Tensor detail::scatter_add_into_zeros(const Shape& shape, int dim, const Tensor& index,
                                      const Tensor& src) {
  Tensor dx = zeros(shape, {src.dtype(), src.device()});
  if (src.numel() == 0) return dx;
  Tensor dy = src.contiguous();
  Tensor idx = index.contiguous();
  const Shape& s = shape.empty() ? Shape{1} : shape;
  const detail::AxisSplit split = detail::split_at(s, dim);
  const int64_t n = idx.dim() == 0 ? 1 : idx.shape()[dim];
  detail::kernels_of(dy).scatter_add(dy.dtype(), dy.data_ptr(), idx.data<int64_t>(), dx.data_ptr(),
                                     split.outer, split.axis, split.inner, n,
                                     detail::stream_of(dy));
  return dx;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* name = "index_select";
  detail::check_defined(name, x);
  detail::check_defined(name, index);
  detail::check_dtype(name, index, DType::I64, "the index");
  detail::check_same_device(name, x, index);
  EMBER_CHECK(index.dim() <= 1, name, ": the index must be 1-d, got ", shape_str(index.shape()));
  EMBER_CHECK(x.dim() > 0, name, ": expected a tensor with at least one dimension");
  const int d = normalize_dim(dim, x.dim(), name);
  check_index_range(name, index, x.shape()[d], dim);
  Tensor input = x.detach().contiguous();
  Tensor idx = index.reshape({-1}).contiguous();
  Shape out_shape = x.shape();
  out_shape[d] = idx.numel();
  Tensor out = empty(out_shape, {x.dtype(), x.device()});
  const detail::AxisSplit s = detail::split_at(x.shape(), d);
  if (out.numel() > 0)
    detail::kernels_of(x).index_select(x.dtype(), input.data_ptr(), idx.data<int64_t>(),
                                       out.data_ptr(), s.outer, s.axis, s.inner, idx.numel(),
                                       detail::stream_of(x));
  if (needs_grad({x})) {
    detail::check_float(name, x);
    connect(std::make_shared<IndexSelectBackward>(x.shape(), d, idx.detach()), {x}, {&out});
  }
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  EMBER_CHECK(weight.dim() == 2, "embedding: weight must be 2-d [num_embeddings, dim], got ",
              shape_str(weight.shape()));
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.shape()[1]);
  return index_select(weight, 0, indices.reshape({-1})).reshape(out_shape);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* name = "gather";
  detail::check_defined(name, x);
  detail::check_defined(name, index);
  detail::check_dtype(name, index, DType::I64, "the index");
  detail::check_same_device(name, x, index);
  EMBER_CHECK(index.dim() == x.dim(), name, ": index ", shape_str(index.shape()),
              " must have as many dimensions as the input ", shape_str(x.shape()));
  EMBER_CHECK(x.dim() > 0, name, ": expected a tensor with at least one dimension");
  const int d = normalize_dim(dim, x.dim(), name);
  for (int64_t i = 0; i < x.dim(); ++i)
    EMBER_CHECK(i == d || index.shape()[i] == x.shape()[i], name, ": index ",
                shape_str(index.shape()), " must match the input ", shape_str(x.shape()),
                " in every dimension but ", dim);
  check_index_range(name, index, x.shape()[d], dim);
  Tensor input = x.detach().contiguous();
  Tensor idx = index.contiguous();
  Tensor out = empty(index.shape(), {x.dtype(), x.device()});
  const detail::AxisSplit s = detail::split_at(x.shape(), d);
  if (out.numel() > 0)
    detail::kernels_of(x).gather(x.dtype(), input.data_ptr(), idx.data<int64_t>(), out.data_ptr(),
                                 s.outer, s.axis, s.inner, index.shape()[d], detail::stream_of(x));
  if (needs_grad({x})) {
    detail::check_float(name, x);
    connect(std::make_shared<GatherBackward>(x.shape(), d, idx.detach()), {x}, {&out});
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  const char* name = "cat";
  EMBER_CHECK(!tensors.empty(), name, ": needs at least one tensor");
  const Tensor& first = tensors[0];
  detail::check_defined(name, first);
  EMBER_CHECK(first.dim() > 0, name, ": 0-d tensors cannot be concatenated; unsqueeze them");
  const int d = normalize_dim(dim, first.dim(), name);
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_defined(name, t);
    detail::check_same_device(name, first, t);
    detail::check_same_dtype(name, first, t);
    bool same_rank = t.dim() == first.dim();
    for (int64_t k = 0; same_rank && k < t.dim(); ++k)
      same_rank = k == d || t.shape()[k] == first.shape()[k];
    EMBER_CHECK(same_rank, name, ": tensor ", i, " has shape ", shape_str(t.shape()),
                ", which does not match ", shape_str(first.shape()), " outside dim ", dim);
    sizes.push_back(t.shape()[d]);
    out_shape[d] += t.shape()[d];
  }
  Tensor out = empty(out_shape, {first.dtype(), first.device()});
  int64_t start = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    detail::copy_into(out.narrow(d, start, sizes[i]), tensors[i].detach());
    start += sizes[i];
  }
  if (needs_grad(tensors)) connect(std::make_shared<CatBackward>(d, sizes), tensors, {&out});
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), "stack: needs at least one tensor");
  const int d = normalize_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " has shape ",
                shape_str(tensors[i].shape()), ", expected ", shape_str(tensors[0].shape()));
    expanded.push_back(tensors[i].unsqueeze(d));
  }
  return cat(expanded, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, "split: sizes must be non-negative");
    total += s;
  }
  EMBER_CHECK(total == x.shape()[d], "split: sizes add up to ", total, " but dim ", dim,
              " has size ", x.shape()[d]);
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(d, start, s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  EMBER_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  const int d = normalize_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t remaining = x.shape()[d]; remaining > 0; remaining -= split_size)
    sizes.push_back(std::min(split_size, remaining));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  const int d = normalize_dim(dim, x.dim(), "chunk");
  const int64_t size = x.shape()[d];
  return split(x, std::max<int64_t>(1, (size + chunks - 1) / chunks), d);
}

}  // namespace ember
