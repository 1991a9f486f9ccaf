// Buffer synchronization across ranks (see buffer_sync.h).
#include "dist/buffer_sync.h"

#include <vector>

#include "dist/model_average.h"  // all_reduce_together, broadcast_together
#include "engine/error.h"        // Error, str_cat

namespace ember::dist {

BufferSync parse_buffer_sync(const std::string& name, const std::string& what) {
  if (name == "broadcast") return BufferSync::Broadcast;
  if (name == "average") return BufferSync::Average;
  if (name == "local") return BufferSync::Local;
  throw Error(str_cat(what, " '", name, "': unknown buffer synchronization; the choices are ",
                      "broadcast, average and local"));
}

std::string buffer_sync_name(BufferSync mode) {
  switch (mode) {
    case BufferSync::Broadcast:
      return "broadcast";
    case BufferSync::Average:
      return "average";
    case BufferSync::Local:
      return "local";
  }
  return "?";
}

void sync_model_buffers(nn::Module& model, Communicator& comm, BufferSync mode) {
  if (mode == BufferSync::Local || comm.size() == 1) return;
  std::vector<Tensor> buffers;
  for (const auto& [name, buffer] : model.named_buffers())
    if (mode == BufferSync::Broadcast || is_floating(buffer.dtype())) buffers.push_back(buffer);
  if (buffers.empty()) return;
  if (mode == BufferSync::Broadcast)
    broadcast_together(buffers, comm, 0);
  else
    all_reduce_together(buffers, comm, ReduceOp::Average);
}

}  // namespace ember::dist
