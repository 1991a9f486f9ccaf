// The CPU reference kernels: plain loops (OpenMP across elements) and OpenBLAS for matrix
// products. Each function has the signature of its KernelTable entry (kernels/kernel_table.h);
// the declarations below use those function types, so a mismatch fails to compile.
#pragma once

#include "kernels/kernel_table.h"  // signatures

namespace ember::cpu {

using namespace ember::kernels;

CopyFn copy;      // copy.cpp
FillFn fill;      // copy.cpp
ArangeFn arange;  // copy.cpp
UnaryFn unary;    // elementwise.cpp
UnaryBackwardFn unary_backward;
BinaryFn binary;
WhereFn where;
ReduceFn reduce;  // reduce.cpp
ArgReduceFn arg_reduce;
VarianceFn variance;
TopkFn topk;
GemmFn gemm;        // matmul.cpp
SoftmaxFn softmax;  // softmax.cpp
SoftmaxBackwardFn softmax_backward;
CrossEntropyFn cross_entropy;
CrossEntropyBackwardFn cross_entropy_backward;
IndexSelectFn index_select;  // index.cpp
IndexAddFn index_add;
GatherFn gather;
ScatterAddFn scatter_add;
RandomUniformFn random_uniform;  // random.cpp
RandomNormalFn random_normal;
DropoutFn dropout;
// conv
Conv2dFn conv2d;  // conv.cpp
Conv2dBackwardDataFn conv2d_backward_data;
Conv2dBackwardFilterFn conv2d_backward_filter;

// pool
MaxPool2dFn max_pool2d;  // pool.cpp
MaxPool2dBackwardFn max_pool2d_backward;
AvgPool2dFn avg_pool2d;
AvgPool2dBackwardFn avg_pool2d_backward;
AdaptiveAvgPool2dFn adaptive_avg_pool2d;
AdaptiveAvgPool2dBackwardFn adaptive_avg_backward;

// norm
NormStatisticsFn norm_statistics;  // norm.cpp
NormForwardFn norm_forward;
NormBackwardFn norm_backward;

// optim
SgdStepFn sgd_step;  // optim.cpp
AdamStepFn adam_step;

// The table and runtime the engine registers for DeviceType::CPU (table.cpp, runtime.cpp).
const KernelTable& kernel_table();
const DeviceRuntime& runtime();

}  // namespace ember::cpu
