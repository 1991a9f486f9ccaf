// Memory kernels on CUDA: strided copy with dtype conversion, fill, arange.
//
// copy is instantiated for every (source, destination) dtype pair (6 x 6), each through the
// strided launch of strided_elementwise.cuh; a dense copy between equal dtypes is a plain
// cudaMemcpyAsync. Conversions go through kernels::cast_value, the CPU's formula.
#include "kernels/cast.h"                        // cast_value
#include "kernels/cuda/launch.cuh"               // grid_size, EMBER_CUDA_ALL_TYPES
#include "kernels/cuda/strided_elementwise.cuh"  // launch_strided_elementwise
#include "kernels/dispatch.h"                    // dispatch

namespace ember::cuda {

namespace {

template <typename Source, typename Destination>
struct CopyElement {
  const Source* source;
  Destination* destination;
  __device__ void operator()(const int64_t (&offset)[2]) const {
    destination[offset[1]] = kernels::cast_value<Destination>(source[offset[0]]);
  }
};

template <typename T>
__global__ void fill_kernel(T* destination, int64_t n, T value) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads()) destination[i] = value;
}

// Computed in double like the CPU, then converted, so both give the same values.
template <typename T>
__global__ void arange_kernel(T* destination, int64_t n, double start, double step) {
  for (int64_t i = first_thread_index(); i < n; i += total_threads())
    destination[i] = kernels::cast_value<T>(start + static_cast<double>(i) * step);
}

}  // namespace

void copy(const IterShape& shape, DType src_dtype, const void* src, const Strides& src_strides,
          DType dst_dtype, void* dst, const Strides& dst_strides, Stream stream) {
  const int64_t n = shape.numel();
  if (n == 0) return;
  const bool dense =
      shape.ndim == 0 || (shape.ndim == 1 && src_strides.v[0] == 1 && dst_strides.v[0] == 1);
  if (dense && src_dtype == dst_dtype) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * dtype_size(src_dtype),
                                     cudaMemcpyDeviceToDevice, as_cuda_stream(stream)));
    return;
  }
  dispatch<EMBER_CUDA_ALL_TYPES>(src_dtype, "copy", [&](auto source_tag) {
    using Source = typename decltype(source_tag)::type;
    dispatch<EMBER_CUDA_ALL_TYPES>(dst_dtype, "copy", [&](auto destination_tag) {
      using Destination = typename decltype(destination_tag)::type;
      const Strides* strides[2] = {&src_strides, &dst_strides};
      const CopyElement<Source, Destination> element{static_cast<const Source*>(src),
                                                     static_cast<Destination*>(dst)};
      launch_strided_elementwise<2>(shape, strides, element, as_cuda_stream(stream));
    });
  });
}

void fill(DType dtype, void* dst, int64_t n, double value, Stream stream) {
  if (n == 0) return;
  dispatch<EMBER_CUDA_ALL_TYPES>(dtype, "fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(
        static_cast<T*>(dst), n, kernels::cast_value<T>(value));
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void arange(DType dtype, void* dst, int64_t n, double start, double step, Stream stream) {
  if (n == 0) return;
  dispatch<float, int32_t, int64_t, uint8_t>(dtype, "arange", [&](auto tag) {
    using T = typename decltype(tag)::type;
    arange_kernel<<<grid_size(n), kBlockSize, 0, as_cuda_stream(stream)>>>(static_cast<T*>(dst), n,
                                                                           start, step);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
