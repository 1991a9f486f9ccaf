"""Writes the PyTorch reference values that test_optimizers.cpp and test_lr_schedulers.cpp
compare ember with: optimizer_references.h and lr_scheduler_references.h beside this file.

Run it with a Python that has PyTorch 1.13 (CPU is enough); CI has no PyTorch and only reads the
headers. Every trajectory is computed in float64 from closed formulas, so the tests can rebuild
the same inputs without PyTorch:

  parameters  two tensors, a [2, 3] and b [4]; element j of the ten (a first) starts at
              sin(0.7 j + 0.3)
  gradients   at step t (from 1): g_j = 0.5 p_j + cos(1.3 j + 0.7 t), with p_j the current value
"""
import math
import os
import shutil
import subprocess

import torch
from torch.optim import lr_scheduler as sched

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 5


def make_params():
    values = [math.sin(0.7 * j + 0.3) for j in range(10)]
    a = torch.tensor(values[:6]).reshape(2, 3).requires_grad_()
    b = torch.tensor(values[6:]).requires_grad_()
    return a, b


def set_grads(params, t, skip=()):
    offset = 0
    for k, p in enumerate(params):
        n = p.numel()
        if k in skip:
            p.grad = None
        else:
            j = torch.arange(offset, offset + n, dtype=torch.float64).reshape(p.shape)
            p.grad = 0.5 * p.detach() + torch.cos(1.3 * j + 0.7 * t)
        offset += n


def trajectory(make_optimizer, skip_at=None):
    """The ten parameter values after each of STEPS steps."""
    a, b = make_params()
    opt = make_optimizer(a, b)
    rows = []
    for t in range(1, STEPS + 1):
        set_grads([a, b], t, skip=(skip_at or {}).get(t, ()))
        opt.step()
        rows.append(torch.cat([a.detach().reshape(-1), b.detach()]).tolist())
    return rows


OPTIMIZERS = {
    "sgd_plain": lambda a, b: torch.optim.SGD([a, b], lr=0.1),
    "sgd_momentum_dampening": lambda a, b: torch.optim.SGD([a, b], lr=0.1, momentum=0.9,
                                                           dampening=0.3),
    "sgd_nesterov": lambda a, b: torch.optim.SGD([a, b], lr=0.05, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda a, b: torch.optim.SGD([a, b], lr=0.1, momentum=0.5,
                                                     weight_decay=0.01),
    "sgd_maximize": lambda a, b: torch.optim.SGD([a, b], lr=0.1, momentum=0.9, maximize=True),
    "adam": lambda a, b: torch.optim.Adam([a, b], lr=0.01),
    "adam_amsgrad": lambda a, b: torch.optim.Adam([a, b], lr=0.01, betas=(0.8, 0.9),
                                                  amsgrad=True),
    "adam_weight_decay": lambda a, b: torch.optim.Adam([a, b], lr=0.01, weight_decay=0.1),
    "adamw": lambda a, b: torch.optim.AdamW([a, b], lr=0.01, weight_decay=0.1),
    "adamw_amsgrad_maximize": lambda a, b: torch.optim.AdamW([a, b], lr=0.02, betas=(0.8, 0.9),
                                                             weight_decay=0.05, amsgrad=True,
                                                             maximize=True),
    "sgd_two_groups": lambda a, b: torch.optim.SGD(
        [{"params": [a], "lr": 0.1, "momentum": 0.9},
         {"params": [b], "lr": 0.01, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1}],
        lr=0.5),
}
# b has no gradient at steps 2 and 3: it is skipped, and its own step count lags a's.
SKIPPING = {"adam_skips_b_at_steps_2_and_3": (lambda a, b: torch.optim.Adam([a, b], lr=0.01),
                                              {2: (1,), 3: (1,)})}


def sgd_two_groups():
    a, b = make_params()
    return torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}],
                           momentum=0.9)


def adam_two_groups():
    a, b = make_params()
    return torch.optim.Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}])


def lrs_over(epochs, make, momentum=None):
    """Each group's lr at epochs 0..epochs (and the momentum or beta1, when asked)."""
    opt, scheduler = make()
    rows = []
    for epoch in range(epochs + 1):
        if epoch > 0:
            opt.step()
            scheduler.step()
        row = list(scheduler.get_last_lr())
        if momentum == "momentum":
            row += [g["momentum"] for g in opt.param_groups]
        elif momentum == "beta1":
            row += [g["betas"][0] for g in opt.param_groups]
        rows.append(row)
    return rows


def with_sgd(make_scheduler):
    def make():
        opt = sgd_two_groups()
        return opt, make_scheduler(opt)
    return make


def sequential(opt, first, second, milestone):
    return sched.SequentialLR(opt, [first(opt), second(opt)], milestones=[milestone])


def one_cycle_adam():
    opt = adam_two_groups()
    return opt, sched.OneCycleLR(opt, max_lr=[0.5, 0.1], total_steps=30, pct_start=0.25,
                                 anneal_strategy="linear", three_phase=True)


SCHEDULERS = {
    "step_lr": (25, with_sgd(lambda o: sched.StepLR(o, step_size=3, gamma=0.5)), None),
    "multi_step_lr": (25, with_sgd(lambda o: sched.MultiStepLR(o, milestones=[2, 5, 5, 11],
                                                                 gamma=0.3)), None),
    "cosine_annealing_lr": (30, with_sgd(lambda o: sched.CosineAnnealingLR(o, T_max=10,
                                                                           eta_min=0.001)), None),
    "linear_lr_warmup": (20, with_sgd(lambda o: sched.LinearLR(o, start_factor=0.1,
                                                                total_iters=8)), None),
    "linear_lr_decay": (20, with_sgd(lambda o: sched.LinearLR(o, start_factor=1.0,
                                                               end_factor=0.2, total_iters=6)),
                        None),
    "one_cycle_lr_sgd": (25, with_sgd(lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=25)),
                         "momentum"),
    "one_cycle_lr_adam_three_phase_linear": (30, one_cycle_adam, "beta1"),
    "warmup_then_cosine": (30, with_sgd(lambda o: sequential(
        o, lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=5),
        lambda o: sched.CosineAnnealingLR(o, T_max=20), 5)), None),
    "warmup_then_multi_step": (20, with_sgd(lambda o: sequential(
        o, lambda o: sched.LinearLR(o, start_factor=0.25, total_iters=3),
        lambda o: sched.MultiStepLR(o, milestones=[5, 10], gamma=0.1), 3)), None),
}


def cpp_rows(rows):
    return ",\n".join("    {" + ", ".join(repr(float(v)) for v in row) + "}" for row in rows)


def write(path, comment, tables):
    with open(path, "w") as out:
        out.write("// " + comment + "\n")
        out.write("// Generated by test/layers/make_pytorch_references.py with PyTorch "
                  + torch.__version__.split("a")[0] + "; do not edit.\n")
        out.write("#pragma once\n\n#include <vector>\n\nnamespace ember::test::pytorch {\n\n")
        for name, rows in tables.items():
            out.write("inline const std::vector<std::vector<double>> %s = {\n%s};\n\n"
                      % (name, cpp_rows(rows)))
        out.write("}  // namespace ember::test::pytorch\n")


def main():
    paths = [os.path.join(HERE, name)
             for name in ("optimizer_references.h", "lr_scheduler_references.h")]
    optimizers = {name: trajectory(make) for name, make in OPTIMIZERS.items()}
    for name, (make, skip_at) in SKIPPING.items():
        optimizers[name] = trajectory(make, skip_at)
    write(paths[0],
          "PyTorch's parameter values after each of 5 optimizer steps (rows), float64.",
          optimizers)
    schedulers = {name: lrs_over(epochs, make, momentum)
                  for name, (epochs, make, momentum) in SCHEDULERS.items()}
    write(paths[1],
          "PyTorch's lr of each parameter group (then momentum or beta1, for OneCycleLR) at "
          "epochs 0, 1, ... (rows).", schedulers)
    if shutil.which("clang-format"):  # the repository's style, as `make format` would leave it
        subprocess.run(["clang-format", "-i"] + paths, check=True)


if __name__ == "__main__":
    main()
