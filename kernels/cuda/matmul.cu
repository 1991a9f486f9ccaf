// Matrix products on CUDA through cuBLAS: one cublasGemmStridedBatchedEx call per gemm.
//
// cuBLAS is column-major, ember row-major. A row-major m x n matrix with leading dimension ld
// is, read column-major, its n x m transpose with the same ld. So instead of the row-major
//   C = op(A) op(B)
// we ask cuBLAS for the column-major
//   C^T = op(B)^T op(A)^T     (an n x m product over k)
// passing B first and A second, m and n swapped, each operand's transpose flag unchanged: the
// stored B read column-major already is B^T, i.e. op(B)^T when op is the identity.
#include <cublas_v2.h>

#include <algorithm>  // std::max
#include <climits>    // INT_MAX
#include <unordered_map>

#include "kernels/cuda/check.h"         // EMBER_CUBLAS_CHECK
#include "kernels/cuda/cuda_kernels.h"  // declarations
#include "kernels/dispatch.h"           // dispatch

namespace ember::cuda {

namespace {

// One cuBLAS handle per (thread, device): a handle belongs to the device that was current when
// it was created, and is not safe to share between threads. Created on first use and never
// destroyed: destroying it at thread or program exit may run after the CUDA runtime is gone.
cublasHandle_t cublas_handle() {
  thread_local std::unordered_map<int, cublasHandle_t> handles;
  int device = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&device));
  cublasHandle_t& handle = handles[device];
  if (!handle) EMBER_CUBLAS_CHECK(cublasCreate(&handle));
  return handle;
}

// cuBLAS takes int sizes; ember's are int64.
int as_cublas_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw Error(str_cat("gemm: ", what, " = ", value, " is outside the range cuBLAS accepts"));
  return static_cast<int>(value);
}

// A leading dimension cuBLAS accepts: at least the rows of the column-major matrix and 1. This
// only changes a degenerate ld (a matrix of one column or of no elements), where it is unused.
int64_t valid_leading_dimension(int64_t ld, int64_t column_major_rows) {
  return std::max<int64_t>({ld, column_major_rows, 1});
}

}  // namespace

void gemm(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, double alpha,
          const GemmOperand& a, const GemmOperand& b, double beta, void* c, int64_t ldc,
          int64_t c_batch_stride, bool allow_tf32, Stream stream) {
  if (m == 0 || n == 0 || batch == 0) return;
  dispatch<float>(dtype, "gemm", [&](auto) {
    // Column-major view (see the top of the file): first operand B^T, second A^T, C^T = n x m.
    const cublasOperation_t first_op = b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t second_op = a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
    // Rows of each stored matrix read column-major: B^T is n x k, A^T is k x m, C^T is n x m.
    const int64_t first_ld = valid_leading_dimension(b.ld, b.transpose ? k : n);
    const int64_t second_ld = valid_leading_dimension(a.ld, a.transpose ? m : k);
    const int64_t result_ld = valid_leading_dimension(ldc, n);
    const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
    // TF32 tensor cores round the inputs to 10 mantissa bits; without allow_tf32 the product is
    // full float32.
    const cublasComputeType_t compute =
        allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;

    cublasHandle_t handle = cublas_handle();
    EMBER_CUBLAS_CHECK(cublasSetStream(handle, static_cast<cudaStream_t>(stream)));
    EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        handle, first_op, second_op, as_cublas_int(n, "n"), as_cublas_int(m, "m"),
        as_cublas_int(k, "k"), &alpha_f, b.ptr, CUDA_R_32F, as_cublas_int(first_ld, "ldb"),
        b.batch_stride, a.ptr, CUDA_R_32F, as_cublas_int(second_ld, "lda"), a.batch_stride, &beta_f,
        c, CUDA_R_32F, as_cublas_int(result_ld, "ldc"), c_batch_stride,
        as_cublas_int(batch, "batch"), compute, CUBLAS_GEMM_DEFAULT));
  });
}

}  // namespace ember::cuda
