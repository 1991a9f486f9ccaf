// Autograd: define-by-run reverse-mode differentiation.
//
// Every differentiable op that runs while gradients are recorded (and has an input that
// requires grad) creates a Node holding what its backward needs, and edges to the nodes that
// produced its inputs. The result tensor points at the node (grad_fn). backward() walks the
// graph from the loss in reverse topological order: each node receives the gradients of its
// outputs, summed over every use, and returns the gradients of its inputs. Leaves (tensors the
// user created with requires_grad) are reached through an AccumulateGrad node that adds the
// gradient into leaf.grad.
//
// Hooks, the interface the distributed algorithms are built on:
//  * tensor hooks (Tensor::register_hook) see a tensor's gradient once it is complete and may
//    replace it. On a non-leaf they run just before its grad_fn consumes the gradient; on a
//    leaf, before accumulation into .grad. A module's backward hook (its deltas, dL/d output)
//    is a tensor hook on the module's output.
//  * post-accumulate hooks (Tensor::register_post_accumulate_grad_hook) fire on a leaf once
//    its .grad is final for this pass: the moment a gradient all-reduce can start.
//
// Order: nodes run in a deterministic order (latest-created first among ready nodes);
// AccumulateGrad nodes run as soon as they are ready, so leaf gradients become final early.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ember {

// Where a gradient goes: output `output_nr` of `node` (an input of the op that recorded it).
struct Edge {
  std::shared_ptr<Node> node;  // null: the input needs no gradient
  int output_nr = 0;
};

// Shape, dtype and device of a node's output, to check gradients and make zeros for outputs
// that received no gradient.
struct OutputMeta {
  Shape shape;
  DType dtype = DType::F32;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;

  virtual std::string name() const = 0;
  // Gradients of this node's inputs (one per next_edges entry; undefined = no gradient) from
  // the gradients of its outputs (one per output, never undefined: missing ones are zeros).
  // Called with gradient recording off.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  // Drops saved tensors once backward has used them (unless retain_graph).
  virtual void release_saved() {}
  // Whether input i wants a gradient (apply may skip computing the others).
  bool input_needs_grad(size_t i) const { return i < next_edges.size() && next_edges[i].node; }

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  uint64_t sequence_nr;  // creation order; ready nodes run latest first
  bool released = false;

  // Tensor hooks on this node's outputs: (output_nr, hook id, hook), in registration order.
  struct OutputHook {
    int output_nr;
    int id;
    GradHook hook;
  };
  std::vector<OutputHook> output_hooks;
};

// Per-tensor autograd state (TensorImpl::autograd).
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                    // leaves (and retain_grad tensors)
  std::shared_ptr<Node> grad_fn;  // null for leaves
  int output_nr = 0;
  std::weak_ptr<Node> grad_accumulator;  // leaves: the AccumulateGrad node, while a graph holds it
  struct LeafHook {
    int id;
    GradHook hook;
  };
  std::vector<LeafHook> hooks;  // leaves: run before accumulation
  struct LeafPostHook {
    int id;
    PostAccumulateHook hook;
  };
  std::vector<LeafPostHook> post_accumulate_hooks;
  bool retains_grad = false;
};

// ---- gradient recording on/off (per thread) ----
bool grad_mode_enabled();
void set_grad_mode(bool enabled);

// Turns gradient recording off for a scope:  { NoGrad no_grad; w.add_(g, -lr); }
class NoGrad {
 public:
  NoGrad() : previous_(grad_mode_enabled()) { set_grad_mode(false); }
  ~NoGrad() { set_grad_mode(previous_); }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// ---- for op implementations ----
// True when gradients are recorded and some input requires them.
bool needs_grad(const std::vector<Tensor>& inputs);
// Wires `node` into the graph: edges to the inputs' producers, and `outputs` (made by the op)
// become the node's outputs (their grad_fn). Call only when needs_grad(inputs).
void connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
             const std::vector<Tensor*>& outputs);
// The edge along which a tensor's gradient flows (its grad_fn, or its leaf accumulator).
Edge gradient_edge(const Tensor& t);

// Runs backward from `roots` with the given gradients (the engine).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                  bool retain_graph);

}  // namespace ember
