// Averaging (and broadcasting) many tensors with ONE collective, and averaging a model's
// replicas into a scratch copy for evaluation.
//
// Every distributed algorithm in ember moves a model as one buffer, not one call per tensor:
// a call per tensor pays the collective's latency hundreds of times. Two cases:
//   - the tensors lie back to back in one storage (a flat model's parameters, layers/
//     flat_parameters.h): the collective runs in place on that one range;
//   - otherwise they are packed into a scratch buffer, reduced once and unpacked.
// Tensors of different dtypes or devices cannot share a buffer: one collective per (dtype,
// device) then (a model is almost always one of each).
#pragma once

#include <vector>

#include "dist/communicator.h"  // Communicator, ReduceOp
#include "engine/tensor.h"      // Tensor
#include "layers/module.h"      // Module

namespace ember::dist {

// The tensors as one 1-d view of their storage, when (in some order) they lie back to back in
// one storage, dense and of one dtype; undefined otherwise.
Tensor contiguous_range(const std::vector<Tensor>& tensors);

// In place on every tensor: the reduction over the ranks of `comm`. Blocks until done.
void all_reduce_together(const std::vector<Tensor>& tensors, Communicator& comm, ReduceOp op);
// In place on every tensor: `root`'s values. Blocks until done.
void broadcast_together(const std::vector<Tensor>& tensors, Communicator& comm, int root);

// `scratch` (a second instance of source's model, same names and shapes) gets the average
// over the ranks of every parameter and floating-point buffer of `source` (integer buffers,
// such as BatchNorm's num_batches_tracked, are copied from source). One collective per dtype;
// `source` is not changed, so evaluating the average never changes the training.
void average_model_into(const nn::Module& source, nn::Module& scratch, Communicator& comm);

}  // namespace ember::dist
