// 2-d convolution on CUDA through cuDNN's convolution API: forward, backward-data,
// backward-filter and the bias gradient, f32, NCHW.
//
// Per call, descriptors of x, w, y and the convolution are made from the Conv2dShape and
// destroyed afterwards (they are host structs; making them costs microseconds). Per shape, once,
// the algorithm is chosen from cuDNN's heuristics (cudnnGet*Algorithm_v7, fastest first) and kept
// with its math type and workspace size in a map keyed by the whole shape, the pass, the math
// mode and the device. The heuristics run no kernels, so the first call of a shape costs no
// benchmark and the choice does not depend on timing noise.
//
// Math: without allow_tf32 the convolution descriptor asks for CUDNN_FMA_MATH (plain f32) and
// algorithms that need tensor-op math are skipped; with it, CUDNN_DEFAULT_MATH lets cuDNN use
// TF32 tensor cores.
//
// Workspace comes from ember's caching allocator and goes back to its cache as soon as the
// call is queued: every kernel of a device runs on its one stream (the handle is bound to it),
// so whatever reuses the block is queued after this convolution.
#include <cudnn.h>

#include <algorithm>  // std::max
#include <array>
#include <climits>  // INT_MAX
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"         // EMBER_CUDA_CHECK, EMBER_CUDNN_CHECK
#include "kernels/cuda/cuda_kernels.h"  // declarations, runtime()
#include "kernels/dispatch.h"           // dispatch

namespace ember::cuda {

namespace {

// Algorithms that want more scratch memory than this are passed over for the next best.
constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;

int current_device() {
  int device = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

// One cuDNN handle per (thread, device), bound to `stream`. A handle belongs to the device that
// was current when it was made and must not be used by two threads at once (as cuBLAS's, see
// matmul.cu). Made on first use and never destroyed: destroying it at thread or program exit
// may run after the CUDA runtime is gone.
cudnnHandle_t cudnn_handle(Stream stream) {
  thread_local std::unordered_map<int, cudnnHandle_t> handles;
  cudnnHandle_t& handle = handles[current_device()];
  if (!handle) EMBER_CUDNN_CHECK(cudnnCreate(&handle));
  EMBER_CUDNN_CHECK(cudnnSetStream(handle, static_cast<cudaStream_t>(stream)));
  return handle;
}

// cuDNN takes int sizes; ember's are int64.
int as_cudnn_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw Error(str_cat("conv2d: ", what, " = ", value, " is outside the range cuDNN accepts"));
  return static_cast<int>(value);
}

cudnnMathType_t requested_math(bool allow_tf32) {
  return allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

// The descriptors of one convolution: x [n, c_in, h, w], y [n, c_out, h_out, w_out], the filter
// and the convolution itself, with the math type asked for.
class Descriptors {
 public:
  Descriptors(const Conv2dShape& s, cudnnMathType_t math) {
    try {
      make(s, math);
    } catch (...) {
      release();
      throw;
    }
  }
  ~Descriptors() { release(); }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

 private:
  void make(const Conv2dShape& s, cudnnMathType_t math) {
    const int n = as_cudnn_int(s.n, "batch"), c_in = as_cudnn_int(s.c_in, "input channels");
    const int c_out = as_cudnn_int(s.c_out, "output channels");
    EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c_in,
                                                 as_cudnn_int(s.h, "height"),
                                                 as_cudnn_int(s.w, "width")));
    EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c_out,
                                                 as_cudnn_int(s.h_out, "output height"),
                                                 as_cudnn_int(s.w_out, "output width")));
    EMBER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(
        w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c_out, as_cudnn_int(s.c_in / s.groups, "channels"),
        as_cudnn_int(s.kh, "kernel height"), as_cudnn_int(s.kw, "kernel width")));
    EMBER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, as_cudnn_int(s.pad_h, "padding"), as_cudnn_int(s.pad_w, "padding"),
        as_cudnn_int(s.stride_h, "stride"), as_cudnn_int(s.stride_w, "stride"),
        as_cudnn_int(s.dilation_h, "dilation"), as_cudnn_int(s.dilation_w, "dilation"),
        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    EMBER_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, as_cudnn_int(s.groups, "groups")));
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
    // The engine computed the output size; cuDNN must agree, or the descriptors are wrong.
    int dims[4] = {};
    EMBER_CUDNN_CHECK(
        cudnnGetConvolution2dForwardOutputDim(conv, x, w, &dims[0], &dims[1], &dims[2], &dims[3]));
    if (dims[0] != n || dims[1] != c_out || dims[2] != s.h_out || dims[3] != s.w_out)
      throw Error(str_cat("conv2d: cuDNN computes the output [", dims[0], ", ", dims[1], ", ",
                          dims[2], ", ", dims[3], "], ember [", s.n, ", ", s.c_out, ", ", s.h_out,
                          ", ", s.w_out, "]"));
  }
  // Destroy calls cannot usefully fail; their status is ignored (this also runs on error paths).
  void release() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
    conv = nullptr;
    w = nullptr;
    x = y = nullptr;
  }
};

// The bias (or its gradient) as a [1, c_out, 1, 1] tensor, which cuDNN broadcasts over y.
class BiasDescriptor {
 public:
  explicit BiasDescriptor(int64_t channels) {
    EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc));
    const cudnnStatus_t status = cudnnSetTensor4dDescriptor(
        desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, as_cudnn_int(channels, "channels"), 1, 1);
    if (status != CUDNN_STATUS_SUCCESS) cudnnDestroyTensorDescriptor(desc);
    EMBER_CUDNN_CHECK(status);
  }
  ~BiasDescriptor() { cudnnDestroyTensorDescriptor(desc); }
  BiasDescriptor(const BiasDescriptor&) = delete;
  BiasDescriptor& operator=(const BiasDescriptor&) = delete;

  cudnnTensorDescriptor_t desc = nullptr;
};

// Scratch memory from the device's caching allocator, for the duration of one call.
class Workspace {
 public:
  explicit Workspace(size_t bytes) : device_(current_device()), bytes_(bytes) {
    if (bytes_ > 0) ptr_ = runtime().allocate(device_, bytes_);
  }
  ~Workspace() {
    if (ptr_) runtime().deallocate(device_, ptr_);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  int device_;
  size_t bytes_;
  void* ptr_ = nullptr;
};

// ---- the algorithm cache --------------------------------------------------------------------

enum class Pass : int64_t { Forward, BackwardData, BackwardFilter };

const char* pass_name(Pass pass) {
  switch (pass) {
    case Pass::Forward:
      return "forward";
    case Pass::BackwardData:
      return "backward-data";
    case Pass::BackwardFilter:
      return "backward-filter";
  }
  return "?";
}

struct Choice {
  int algorithm = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace_bytes = 0;
};

using ChoiceKey = std::array<int64_t, 19>;

ChoiceKey choice_key(Pass pass, const Conv2dShape& s, bool allow_tf32) {
  return {static_cast<int64_t>(pass),
          current_device(),
          allow_tf32 ? 1 : 0,
          s.n,
          s.c_in,
          s.h,
          s.w,
          s.c_out,
          s.kh,
          s.kw,
          s.stride_h,
          s.stride_w,
          s.pad_h,
          s.pad_w,
          s.dilation_h,
          s.dilation_w,
          s.groups,
          s.h_out,
          s.w_out};
}

std::string shape_text(const Conv2dShape& s) {
  return str_cat("x [", s.n, ", ", s.c_in, ", ", s.h, ", ", s.w, "], w [", s.c_out, ", ",
                 s.c_in / s.groups, ", ", s.kh, ", ", s.kw, "], stride (", s.stride_h, ", ",
                 s.stride_w, "), padding (", s.pad_h, ", ", s.pad_w, "), dilation (", s.dilation_h,
                 ", ", s.dilation_w, "), groups ", s.groups);
}

// The first (fastest) of cuDNN's ranked results that works, runs in the math asked for and
// fits kMaxWorkspaceBytes. Its workspace size is asked again later, for the exact descriptors.
template <typename Perf>
Choice first_usable(const std::vector<Perf>& results, int count, bool allow_tf32, Pass pass,
                    const Conv2dShape& s) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kMaxWorkspaceBytes) continue;
    const bool tensor_op =
        r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (!allow_tf32 && tensor_op) continue;
    Choice c;
    c.algorithm = static_cast<int>(r.algo);
    // Without TF32 the descriptor keeps FMA math whatever the result says (DEFAULT would allow
    // TF32 on Ampere and later).
    c.math = allow_tf32 ? r.mathType : CUDNN_FMA_MATH;
    return c;
  }
  throw Error(str_cat("conv2d: cuDNN offers no usable ", pass_name(pass), " algorithm for ",
                      shape_text(s), " (", count, " candidates, none successful in ",
                      allow_tf32 ? "TF32" : "FMA", " math within ", kMaxWorkspaceBytes >> 20,
                      " MiB of workspace)"));
}

// Every choice made so far, shared by all threads. Never destroyed (see cudnn_handle).
struct ChoiceCache {
  std::mutex mutex;
  std::map<ChoiceKey, Choice> choices;
};
ChoiceCache& choice_cache() {
  static ChoiceCache* cache = new ChoiceCache();
  return *cache;
}

// The cached choice for (pass, shape, math, device), made by `choose` on first use.
template <typename Choose>
Choice cached_choice(Pass pass, const Conv2dShape& s, bool allow_tf32, Choose&& choose) {
  const ChoiceKey key = choice_key(pass, s, allow_tf32);
  ChoiceCache& cache = choice_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  auto found = cache.choices.find(key);
  if (found != cache.choices.end()) return found->second;
  const Choice c = choose();
  cache.choices.emplace(key, c);
  return c;
}

Choice forward_choice(cudnnHandle_t handle, const Descriptors& d, const Conv2dShape& s,
                      bool allow_tf32) {
  return cached_choice(Pass::Forward, s, allow_tf32, [&] {
    int max_count = 0, count = 0;
    EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_count));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> results(std::max(max_count, 1));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x, d.w, d.conv, d.y,
                                                             max_count, &count, results.data()));
    Choice c = first_usable(results, count, allow_tf32, Pass::Forward, s);
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        handle, d.x, d.w, d.conv, d.y, static_cast<cudnnConvolutionFwdAlgo_t>(c.algorithm),
        &c.workspace_bytes));
    return c;
  });
}

Choice backward_data_choice(cudnnHandle_t handle, const Descriptors& d, const Conv2dShape& s,
                            bool allow_tf32) {
  return cached_choice(Pass::BackwardData, s, allow_tf32, [&] {
    int max_count = 0, count = 0;
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &max_count));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> results(std::max(max_count, 1));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        handle, d.w, d.y, d.conv, d.x, max_count, &count, results.data()));
    Choice c = first_usable(results, count, allow_tf32, Pass::BackwardData, s);
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        handle, d.w, d.y, d.conv, d.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algorithm),
        &c.workspace_bytes));
    return c;
  });
}

Choice backward_filter_choice(cudnnHandle_t handle, const Descriptors& d, const Conv2dShape& s,
                              bool allow_tf32) {
  return cached_choice(Pass::BackwardFilter, s, allow_tf32, [&] {
    int max_count = 0, count = 0;
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &max_count));
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> results(std::max(max_count, 1));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle, d.x, d.y, d.conv, d.w, max_count, &count, results.data()));
    Choice c = first_usable(results, count, allow_tf32, Pass::BackwardFilter, s);
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    EMBER_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        handle, d.x, d.y, d.conv, d.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algorithm),
        &c.workspace_bytes));
    return c;
  });
}

const float kOne = 1.0f, kZero = 0.0f;  // cuDNN's alpha and beta, passed by host pointer

}  // namespace

void conv2d(DType dtype, const Conv2dShape& s, const void* x, const void* w, const void* bias,
            void* y, bool allow_tf32, Stream stream) {
  dispatch<float>(dtype, "conv2d", [&](auto) {
    cudnnHandle_t handle = cudnn_handle(stream);
    Descriptors d(s, requested_math(allow_tf32));
    const Choice c = forward_choice(handle, d, s, allow_tf32);
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    Workspace workspace(c.workspace_bytes);
    EMBER_CUDNN_CHECK(cudnnConvolutionForward(handle, &kOne, d.x, x, d.w, w, d.conv,
                                              static_cast<cudnnConvolutionFwdAlgo_t>(c.algorithm),
                                              workspace.get(), workspace.bytes(), &kZero, d.y, y));
    if (bias) {
      BiasDescriptor b(s.c_out);
      EMBER_CUDNN_CHECK(cudnnAddTensor(handle, &kOne, b.desc, bias, &kOne, d.y, y));  // y += bias
    }
  });
}

void conv2d_backward_data(DType dtype, const Conv2dShape& s, const void* dy, const void* w,
                          void* dx, bool allow_tf32, Stream stream) {
  dispatch<float>(dtype, "conv2d_backward_data", [&](auto) {
    cudnnHandle_t handle = cudnn_handle(stream);
    Descriptors d(s, requested_math(allow_tf32));
    const Choice c = backward_data_choice(handle, d, s, allow_tf32);
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    Workspace workspace(c.workspace_bytes);
    EMBER_CUDNN_CHECK(
        cudnnConvolutionBackwardData(handle, &kOne, d.w, w, d.y, dy, d.conv,
                                     static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algorithm),
                                     workspace.get(), workspace.bytes(), &kZero, d.x, dx));
  });
}

void conv2d_backward_filter(DType dtype, const Conv2dShape& s, const void* x, const void* dy,
                            void* dw, void* db, bool allow_tf32, Stream stream) {
  dispatch<float>(dtype, "conv2d_backward_filter", [&](auto) {
    cudnnHandle_t handle = cudnn_handle(stream);
    Descriptors d(s, requested_math(allow_tf32));
    if (dw) {
      const Choice c = backward_filter_choice(handle, d, s, allow_tf32);
      EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
      Workspace workspace(c.workspace_bytes);
      EMBER_CUDNN_CHECK(
          cudnnConvolutionBackwardFilter(handle, &kOne, d.x, x, d.y, dy, d.conv,
                                         static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algorithm),
                                         workspace.get(), workspace.bytes(), &kZero, d.w, dw));
    }
    if (db) {
      BiasDescriptor b(s.c_out);
      EMBER_CUDNN_CHECK(cudnnConvolutionBackwardBias(handle, &kOne, d.y, dy, &kZero, b.desc, db));
    }
  });
}

}  // namespace ember::cuda
