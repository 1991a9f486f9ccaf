// One collective for many tensors, and averaging replicas into a scratch model (see
// model_average.h).
#include "dist/model_average.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "engine/autograd.h"  // NoGrad
#include "engine/error.h"     // EMBER_CHECK, str_cat

namespace ember::dist {

namespace {

// A 1-d tensor over `numel` elements of `like`'s storage, starting at `like`'s first element.
Tensor range_of(const Tensor& like, int64_t numel) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = like.storage();
  impl->shape = {numel};
  impl->strides = {1};
  impl->offset = like.offset();
  impl->dtype = like.dtype();
  return Tensor(std::move(impl));
}

// The tensors of one dtype and device, in the order they were given.
using Batch = std::vector<Tensor>;

std::vector<Batch> by_dtype_and_device(const std::vector<Tensor>& tensors) {
  std::vector<Batch> batches;
  for (const Tensor& t : tensors) {
    if (t.numel() == 0) continue;
    auto same = [&](const Batch& b) {
      return b.front().dtype() == t.dtype() && b.front().device() == t.device();
    };
    auto it = std::find_if(batches.begin(), batches.end(), same);
    if (it == batches.end())
      batches.push_back({t});
    else
      it->push_back(t);
  }
  return batches;
}

// Copies the tensors into one new flat buffer, in order.
Tensor pack(const Batch& batch) {
  int64_t total = 0;
  for (const Tensor& t : batch) total += t.numel();
  Tensor flat = empty({total}, TensorOptions(batch.front().dtype(), batch.front().device()));
  int64_t offset = 0;
  for (const Tensor& t : batch) {
    flat.narrow(0, offset, t.numel()).view(t.shape()).copy_(t.detach());
    offset += t.numel();
  }
  return flat;
}

void unpack(const Tensor& flat, const Batch& batch) {
  int64_t offset = 0;
  for (const Tensor& t : batch) {
    Tensor(t.detach()).copy_(flat.narrow(0, offset, t.numel()).view(t.shape()));
    offset += t.numel();
  }
}

// Runs `collective` once per (dtype, device) on a buffer holding the tensors: in place when
// they form one range of storage, else through a packed copy.
template <typename Collective>
void together(const std::vector<Tensor>& tensors, Collective&& collective) {
  NoGrad no_grad;
  for (const Batch& batch : by_dtype_and_device(tensors)) {
    Tensor range = contiguous_range(batch);
    if (range.defined()) {
      collective(range);
    } else {
      Tensor flat = pack(batch);
      collective(flat);
      unpack(flat, batch);
    }
  }
}

}  // namespace

Tensor contiguous_range(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return Tensor();
  std::vector<Tensor> sorted = tensors;
  for (const Tensor& t : sorted)
    if (t.storage() != sorted.front().storage() || t.dtype() != sorted.front().dtype() ||
        !t.is_contiguous())
      return Tensor();
  std::sort(sorted.begin(), sorted.end(),
            [](const Tensor& a, const Tensor& b) { return a.offset() < b.offset(); });
  int64_t numel = sorted.front().numel();
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].offset() != sorted[i - 1].offset() + sorted[i - 1].numel()) return Tensor();
    numel += sorted[i].numel();
  }
  return range_of(sorted.front(), numel);
}

void all_reduce_together(const std::vector<Tensor>& tensors, Communicator& comm, ReduceOp op) {
  together(tensors, [&](const Tensor& flat) { comm.all_reduce(flat, op)->wait(); });
}

void broadcast_together(const std::vector<Tensor>& tensors, Communicator& comm, int root) {
  together(tensors, [&](const Tensor& flat) { comm.broadcast(flat, root)->wait(); });
}

void average_model_into(const nn::Module& source, nn::Module& scratch, Communicator& comm) {
  NoGrad no_grad;
  // Pair every tensor of source with scratch's tensor of the same name.
  NamedTensors from = source.named_parameters();
  NamedTensors to = scratch.named_parameters();
  const NamedTensors from_buffers = source.named_buffers();
  const NamedTensors to_buffers = scratch.named_buffers();
  from.insert(from.end(), from_buffers.begin(), from_buffers.end());
  to.insert(to.end(), to_buffers.begin(), to_buffers.end());
  EMBER_CHECK(from.size() == to.size(), "average_model_into: the source model has ", from.size(),
              " parameters and buffers, the scratch model ", to.size(),
              " (it must be another instance of the same model)");
  std::vector<Tensor> averaged_from, averaged_to;
  for (size_t i = 0; i < from.size(); ++i) {
    const auto& [name, value] = from[i];
    const Tensor& target = to[i].second;
    EMBER_CHECK(to[i].first == name && target.shape() == value.shape(),
                "average_model_into: the source model's '", name, "' ", shape_str(value.shape()),
                " does not match the scratch model's '", to[i].first, "' ",
                shape_str(target.shape()), " (it must be another instance of the same model)");
    if (is_floating(value.dtype())) {
      averaged_from.push_back(value);
      averaged_to.push_back(target);
    } else {
      Tensor(target.detach()).copy_(value.detach());
    }
  }
  // Pack source's values (never reduce in place: source must stay as it is), reduce once per
  // dtype, unpack into scratch.
  const std::vector<Batch> sources = by_dtype_and_device(averaged_from);
  const std::vector<Batch> targets = by_dtype_and_device(averaged_to);
  EMBER_CHECK(sources.size() == targets.size(),
              "average_model_into: the scratch model's dtypes or devices differ from the source's");
  for (size_t b = 0; b < sources.size(); ++b) {
    Tensor flat = pack(sources[b]);
    comm.all_reduce(flat, ReduceOp::Average)->wait();
    unpack(flat, targets[b]);
  }
}

}  // namespace ember::dist
