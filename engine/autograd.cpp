// The backward engine, leaf accumulation and the graph-building helpers.
#include "engine/autograd.h"

#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"  // add, for summing gradients

namespace ember {

namespace {

thread_local bool t_grad_mode = true;
std::atomic<uint64_t> g_sequence{0};

// AccumulateGrad: the node behind a leaf. Runs the leaf's hooks, adds the gradient into
// leaf.grad (in place when .grad exists, so a gradient that is a view into a flat buffer
// stays one), then runs its post-accumulate hooks.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {
    sequence_nr = UINT64_MAX;  // run as soon as ready: leaf gradients become final early
  }
  std::string name() const override { return "AccumulateGrad"; }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor leaf(leaf_);
    AutogradMeta& meta = *leaf_->autograd;
    Tensor grad = grads[0];
    for (auto& h : meta.hooks) {
      if (std::optional<Tensor> replaced = h.hook(grad)) grad = *replaced;
    }
    if (meta.grad.defined()) {
      meta.grad.add_(grad);
    } else {
      // A fresh contiguous copy: the incoming tensor may be shared with other nodes.
      Tensor dense = grad.contiguous();
      meta.grad = dense.is_same(grad) ? grad.clone() : dense;
    }
    for (auto& h : meta.post_accumulate_hooks) h.hook(leaf);
    return {};
  }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta& meta = *leaf.impl_ptr()->autograd;
  if (auto existing = meta.grad_accumulator.lock()) return existing;
  auto node = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
  node->outputs.push_back({leaf.shape(), leaf.dtype(), leaf.device()});
  meta.grad_accumulator = node;
  return node;
}

}  // namespace

Node::Node() : sequence_nr(g_sequence++) {}

bool grad_mode_enabled() {
  return t_grad_mode;
}
void set_grad_mode(bool enabled) {
  t_grad_mode = enabled;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  return {grad_accumulator(t), 0};
}

void connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
             const std::vector<Tensor*>& outputs) {
  node->next_edges.clear();
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  node->outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = *outputs[i];
    node->outputs.push_back({out.shape(), out.dtype(), out.device()});
    TensorImpl& impl = *out.impl_ptr();
    if (!impl.autograd) impl.autograd = std::make_unique<AutogradMeta>();
    impl.autograd->grad_fn = node;
    impl.autograd->output_nr = static_cast<int>(i);
  }
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                  bool retain_graph) {
  NoGrad no_grad;  // backward rules compute with recording off

  // 1. Count, for every node reachable from the roots, how many edges lead into it.
  std::unordered_map<Node*, int> dependencies;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  std::vector<Edge> root_edges;
  for (const Tensor& r : roots) {
    root_edges.push_back(gradient_edge(r));
    Node* n = root_edges.back().node.get();
    if (n && seen.insert(n).second) stack.push_back(n);
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.node) continue;
      ++dependencies[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  // 2. Gradient buffers: per node, one slot per output, summed over every incoming edge.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto accumulate = [&](const Edge& e, const Tensor& grad) {
    std::vector<Tensor>& slots = buffers[e.node.get()];
    if (slots.empty()) slots.resize(e.node->outputs.size());
    Tensor& slot = slots[e.output_nr];
    slot = slot.defined() ? add(slot, grad) : grad;
  };

  // 3. Ready nodes run latest-created first (a max-heap on sequence_nr).
  auto later_first = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence_nr < b->sequence_nr;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>,
                      decltype(later_first)>
      ready(later_first);

  for (size_t i = 0; i < root_edges.size(); ++i) {
    const Edge& e = root_edges[i];
    if (!e.node) continue;
    const OutputMeta& meta = e.node->outputs[e.output_nr];
    EMBER_CHECK(grad_roots[i].shape() == meta.shape, "backward: gradient of shape ",
                shape_str(grad_roots[i].shape()), " given for a tensor of shape ",
                shape_str(meta.shape));
    accumulate(e, grad_roots[i]);
  }
  for (const Edge& e : root_edges)
    if (e.node && dependencies[e.node.get()] == 0) {
      dependencies[e.node.get()] = -1;  // queued
      ready.push(e.node);
    }

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    EMBER_CHECK(!node->released, "backward: ", node->name(),
                " was already used by an earlier backward pass and its saved tensors freed; "
                "pass retain_graph=true to the first backward to go through a graph twice");

    std::vector<Tensor> grads = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    grads.resize(node->outputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const OutputMeta& meta = node->outputs[i];
      if (!grads[i].defined()) grads[i] = zeros(meta.shape, {meta.dtype, meta.device});
    }
    for (const Node::OutputHook& h : node->output_hooks) {
      if (std::optional<Tensor> replaced = h.hook(grads[h.output_nr])) {
        const OutputMeta& meta = node->outputs[h.output_nr];
        EMBER_CHECK(replaced->shape() == meta.shape && replaced->dtype() == meta.dtype,
                    "a gradient hook returned ", shape_str(replaced->shape()), " ",
                    dtype_name(replaced->dtype()), " for a tensor of ", shape_str(meta.shape), " ",
                    dtype_name(meta.dtype));
        grads[h.output_nr] = *replaced;
      }
    }

    std::vector<Tensor> input_grads = node->apply(std::move(grads));
    if (!retain_graph && !dynamic_cast<AccumulateGrad*>(node.get())) {
      node->release_saved();
      node->released = true;
    }

    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.node) continue;
      if (i < input_grads.size() && input_grads[i].defined()) accumulate(e, input_grads[i]);
      if (--dependencies[e.node.get()] == 0) ready.push(e.node);
    }
  }
}

}  // namespace ember
