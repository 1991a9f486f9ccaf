// Matrix products for the CPU kernels (matmul.cpp, conv.cpp): OpenBLAS, run on OpenMP's threads.
//
// Why OpenBLAS itself runs single-threaded. ember's CPU kernels use OpenMP's threads, and the
// pthreads build of OpenBLAS keeps a pool of its own. Used in turn, the two pools fight over the
// cores: after each product OpenBLAS's threads keep spinning for a while, waiting for more work,
// on the very cores the next OpenMP loop wants (and OpenMP's threads do the same to OpenBLAS).
// On 2 idle cores a training step of a small CNN took twice as long with 2 threads as with 1
// (ten times as long while other programs kept the cores busy).
// So ember keeps OpenBLAS at one thread (for the whole process) and splits products over
// OpenMP threads itself:
//   - many products (the entries of a batched matmul, the samples of a convolution): each thread
//     takes whole products;
//   - one large product: each thread takes a block of rows (or columns) of C. Each element of C
//     is still one thread's sum over the whole of k, as before (OpenBLAS never splits k).
#pragma once

#include <cblas.h>  // cblas_sgemm, cblas_dgemm, openblas_set_num_threads
#include <omp.h>    // omp_get_max_threads, omp_in_parallel

#include <algorithm>  // std::min
#include <cstdint>
#include <type_traits>  // std::is_same_v

namespace ember::cpu {

// Below this many multiply-adds (m * n * k) a product runs on one thread: waking the others
// would cost more than it saves. (OpenBLAS's own threshold is the same.)
constexpr int64_t kParallelGemmWork = int64_t(1) << 18;

// Sets OpenBLAS to one thread (for the whole process). Checked before every product, not once:
// a program may set it otherwise between two of ember's products (to time OpenBLAS on its own
// threads, say), and ember's products must never start OpenBLAS threads inside OpenMP's.
inline void use_single_threaded_blas() {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// C (m x n, ld ldc) = alpha op(A) (m x k) op(B) (k x n) + beta C, row-major, on the calling
// thread.
template <typename T>
void gemm_on_this_thread(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         T alpha, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                         int64_t ldc) {
  use_single_threaded_blas();
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The same product split over OpenMP's threads by blocks of rows of C (or of columns, when C is
// wider than tall). Called from inside a parallel region, it runs on the calling thread.
template <typename T>
void gemm_on_all_threads(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         T alpha, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                         int64_t ldc) {
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads == 1 || m * n * k < kParallelGemmWork) {
    gemm_on_this_thread(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool by_rows = m >= n;
  const int64_t length = by_rows ? m : n;
  // Blocks of a multiple of 16 (OpenBLAS's register tiles), one per thread.
  const int64_t block = (length + threads * 16 - 1) / (threads * 16) * 16;
  const int64_t blocks = (length + block - 1) / block;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t begin = i * block, size = std::min(block, length - begin);
    if (by_rows)  // rows begin..begin+size of op(A) and of C
      gemm_on_this_thread(transpose_a, transpose_b, size, n, k, alpha,
                          a + (transpose_a ? begin : begin * lda), lda, b, ldb, beta,
                          c + begin * ldc, ldc);
    else  // columns begin..begin+size of op(B) and of C
      gemm_on_this_thread(transpose_a, transpose_b, m, size, k, alpha, a, lda,
                          b + (transpose_b ? begin * ldb : begin), ldb, beta, c + begin, ldc);
  }
}

}  // namespace ember::cpu
