// Error checks for the CUDA libraries: every runtime and library call goes through one of these
// macros, and every kernel launch is followed by EMBER_CUDA_CHECK_LAUNCH(). A failure throws
// ember::Error (OutOfMemoryError when the device is out of memory) naming the call, its
// file:line and the library's own error name and text.
//
// One macro per library, each backed by a check_LIBRARY function. NCCL follows the same
// pattern when it arrives: include the header, add check_nccl(ncclResult_t, ...) using
// ncclGetErrorString, and #define EMBER_NCCL_CHECK(call) like the ones below.
//
// A kernel launch fails with cudaErrorNoKernelImageForDevice when the binary was compiled for
// other GPUs than the one it runs on; that message says how to rebuild.
#pragma once

#include <cublas_v2.h>     // cublasStatus_t, cublasGetStatusName
#include <cuda_runtime.h>  // cudaError_t, cudaGetErrorName
#include <cudnn.h>         // cudnnStatus_t, cudnnGetErrorString, cudnnGetLastErrorString

#include <string>

#include "engine/error.h"  // ember::Error, OutOfMemoryError, str_cat

// check_cudnn uses cuDNN 9's error codes and cudnnGetLastErrorString.
#if CUDNN_MAJOR < 9
#error "ember needs cuDNN 9 or later: point EMBER_CUDA_HINTS at a cuDNN 9 installation"
#endif

// The CUDA architectures this binary was compiled for ("90", "80;90"); CMake defines it.
#ifndef EMBER_CUDA_ARCHITECTURES
#define EMBER_CUDA_ARCHITECTURES "unknown"
#endif

namespace ember::cuda {

// "this binary has no kernel image for this GPU", with the capability of the current device.
inline std::string no_kernel_image_message() {
  int device = 0, major = 0, minor = 0;
  cudaGetDevice(&device);  // best effort: this message is already an error path
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return str_cat("this ember binary has no kernel image for this GPU (cuda:", device,
                 ", compute capability ", major, ".", minor,
                 "); it was built for CUDA architectures ", EMBER_CUDA_ARCHITECTURES,
                 ". Rebuild for this GPU with `make CUDA_ARCH=", major, minor, "`");
}

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  const std::string where = str_cat(call, " at ", file, ":", line);
  if (status == cudaErrorNoKernelImageForDevice)
    throw Error(str_cat(no_kernel_image_message(), " (", where, ")"));
  const std::string message = str_cat("CUDA error ", cudaGetErrorName(status), " (",
                                      cudaGetErrorString(status), ") in ", where);
  if (status == cudaErrorMemoryAllocation) throw OutOfMemoryError(message);
  throw Error(message);
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const std::string message =
      str_cat("cuBLAS error ", cublasGetStatusName(status), " (", cublasGetStatusString(status),
              ") in ", call, " at ", file, ":", line);
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemoryError(message);
  throw Error(message);
}

// cuDNN 9 keeps a text of its last error (which parameter was wrong, say); it joins the status.
inline void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string message = str_cat("cuDNN error ", cudnnGetErrorString(status), " (",
                                static_cast<int>(status), ") in ", call, " at ", file, ":", line);
  if (detail[0]) message += str_cat(": ", detail);
  if (status == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
      status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    throw OutOfMemoryError(message);
  throw Error(message);
}

}  // namespace ember::cuda

#define EMBER_CUDA_CHECK(call) ::ember::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define EMBER_CUBLAS_CHECK(call) ::ember::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#define EMBER_CUDNN_CHECK(call) ::ember::cuda::check_cudnn((call), #call, __FILE__, __LINE__)

// After kernel<<<grid, block, shared, stream>>>(...): a launch reports its errors (bad
// configuration, no kernel image for this GPU) through cudaGetLastError, not a return value.
#define EMBER_CUDA_CHECK_LAUNCH() \
  ::ember::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
