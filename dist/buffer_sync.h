// What happens to a model's buffers (BatchNorm's running statistics) across ranks. One
// vocabulary for every distributed algorithm of ember:
//   broadcast  rank 0's buffers are copied to every rank (PyTorch DDP's choice, the default of
//              synchronous data parallel);
//   average    floating-point buffers are replaced by their mean over the ranks;
//   local      each rank keeps its own (what every local SGD reference does: the default there).
#pragma once

#include <string>

#include "dist/communicator.h"  // Communicator
#include "layers/module.h"      // Module

namespace ember::dist {

enum class BufferSync { Broadcast, Average, Local };

// "broadcast", "average", "local"; an unknown name is an error that lists them, naming `what`
// (the flag or option key).
BufferSync parse_buffer_sync(const std::string& name, const std::string& what = "buffers");
std::string buffer_sync_name(BufferSync mode);

// Brings `model`'s buffers in line across the ranks of `comm`. Broadcast copies all of rank 0's
// buffers; Average replaces the floating-point ones by their mean (integer ones, such as
// num_batches_tracked, advance alike on every rank and stay as they are); Local does nothing.
// One collective per dtype; none when the model has no buffers.
void sync_model_buffers(nn::Module& model, Communicator& comm, BufferSync mode);

}  // namespace ember::dist
