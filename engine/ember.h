// Everything a program needs from ember's engine, in one include.
#pragma once

#include "engine/autograd.h"   // NoGrad, Node, hooks
#include "engine/device.h"     // Device
#include "engine/dtype.h"      // DType
#include "engine/error.h"      // ember::Error
#include "engine/gradcheck.h"  // gradcheck
#include "engine/ops.h"        // the differentiable ops
#include "engine/random.h"     // manual_seed, rand, randn, Generator
#include "engine/runtime.h"    // cuda_available, best_available_device, memory_stats
#include "engine/tensor.h"     // Tensor, creation
