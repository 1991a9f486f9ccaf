# Reference values for test/engine/test_norm.cpp, from PyTorch (run with PyTorch 1.13, CPU):
#   python3 test/engine/norm_reference.py
# prints C++ initializers to paste into the test. Inputs come from closed formulas that the C++
# test rebuilds element by element (formula_values there); everything is float64.
import math

import torch
import torch.nn.functional as F


def values(n, formula):
    return [formula(k) for k in range(n)]


def step1(k):
    return 2 * math.sin(0.9 * k + 0.5) + 0.1 * k


def step2(k):
    return 1.5 * math.cos(0.6 * k) - 0.3


def projection(k):
    return math.cos(0.37 * k + 0.2)


def affine_weight(k):
    return 1 + 0.25 * math.sin(1.3 * k + 1)


def affine_bias(k):
    return 0.1 * k - 0.2


def leaf(shape, formula):
    n = math.prod(shape)
    return torch.tensor(values(n, formula), dtype=torch.float64).reshape(shape).requires_grad_()


def emit(name, t):
    flat = t.detach().reshape(-1).tolist()
    body = ", ".join(repr(v) for v in flat)
    print(f"const std::vector<double> {name} = {{{body}}};")


def backward_of(y, inputs):
    p = torch.tensor(values(y.numel(), projection), dtype=torch.float64).reshape(y.shape)
    (y * p).sum().backward()
    return [t.grad for t in inputs]


# batch norm, training, two steps on [2, 3, 2, 2] with running statistics, momentum 0.1
shape = [2, 3, 2, 2]
running_mean = torch.zeros(3, dtype=torch.float64)
running_var = torch.ones(3, dtype=torch.float64)
w, b = leaf([3], affine_weight), leaf([3], affine_bias)
x1 = leaf(shape, step1)
F.batch_norm(x1, running_mean, running_var, w, b, training=True, momentum=0.1)
x2 = leaf(shape, step2)
y2 = F.batch_norm(x2, running_mean, running_var, w, b, training=True, momentum=0.1)
emit("batch_train_y", y2)
for name, g in zip(["dx", "dweight", "dbias"], backward_of(y2, [x2, w, b])):
    emit(f"batch_train_{name}", g)
emit("batch_running_mean", running_mean)
emit("batch_running_var", running_var)

# batch norm, evaluation, with the running statistics from above
w, b = leaf([3], affine_weight), leaf([3], affine_bias)
x = leaf(shape, step1)
y = F.batch_norm(x, running_mean, running_var, w, b, training=False)
emit("batch_eval_y", y)
for name, g in zip(["dx", "dweight", "dbias"], backward_of(y, [x, w, b])):
    emit(f"batch_eval_{name}", g)

# group norm: [2, 4, 3], 2 groups
w, b = leaf([4], affine_weight), leaf([4], affine_bias)
x = leaf([2, 4, 3], step1)
y = F.group_norm(x, 2, w, b, eps=1e-5)
emit("group_y", y)
for name, g in zip(["dx", "dweight", "dbias"], backward_of(y, [x, w, b])):
    emit(f"group_{name}", g)

# layer norm: [2, 3, 4] over [3, 4]
w, b = leaf([3, 4], affine_weight), leaf([3, 4], affine_bias)
x = leaf([2, 3, 4], step1)
y = F.layer_norm(x, [3, 4], w, b, eps=1e-5)
emit("layer_y", y)
for name, g in zip(["dx", "dweight", "dbias"], backward_of(y, [x, w, b])):
    emit(f"layer_{name}", g)
