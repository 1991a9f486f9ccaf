"""PyTorch's figures for bin/bench_train_cpu: the same small Fashion-MNIST CNN, the same batches,
the same timings (a whole SGD step split into forward + loss, backward and optimizer step, then
each layer's forward and backward on its own), printed the same way.

    /usr/bin/python3 bench/torch_train_cpu.py                  # batches 64, 128, 256; 2 threads
    /usr/bin/python3 bench/torch_train_cpu.py --batch 128 --optimizer adam --threads 1
"""
import argparse
import os
import statistics
import time

import torch
from torch import nn

EPOCH_IMAGES = 60000  # Fashion-MNIST's training set


def mnist_cnn_layers():
    return [
        ("conv1 1->32 3x3", nn.Conv2d(1, 32, 3, padding=1)),
        ("relu1", nn.ReLU()),
        ("pool1 2x2", nn.MaxPool2d(2)),
        ("conv2 32->64 3x3", nn.Conv2d(32, 64, 3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool2 2x2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1 3136->128", nn.Linear(3136, 128)),
        ("relu3", nn.ReLU()),
        ("fc2 128->10", nn.Linear(128, 10)),
    ]


REPORT_FASTEST = False  # --fastest: the minimum of the timings instead of their median


def typical(times):
    times = list(times)
    return min(times) if REPORT_FASTEST else statistics.median(times)


def typical_seconds(warmup, repeat, body, setup=lambda: None):
    times = []
    for i in range(warmup + repeat):
        setup()
        start = time.perf_counter()
        body()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return typical(times)


def print_rate(what, seconds, batch):
    images_per_s = batch / seconds
    print(f"  {what:<28} {seconds * 1e3:9.2f} ms  {images_per_s:9.0f} images/s"
          f"  {EPOCH_IMAGES / images_per_s:7.1f} s/epoch")


def bench_batch(batch, optimizer_name, warmup, steps):
    torch.manual_seed(0)
    layers = mnist_cnn_layers()
    model = nn.Sequential(*[layer for _, layer in layers])
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters())
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 1, 28, 28)
    labels = torch.arange(batch) % 10
    loss_fn = nn.CrossEntropyLoss()

    times = []  # (forward, backward, optimizer)
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = loss_fn(model(images), labels)
        forward = time.perf_counter() - start
        start = time.perf_counter()
        loss.backward()
        backward = time.perf_counter() - start
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # in place, as ember's zero_grad
        step = time.perf_counter() - start
        if i >= warmup:
            times.append((forward, backward, step))
    policy = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    print(f"batch {batch} ({optimizer_name}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={policy}, {'fastest' if REPORT_FASTEST else 'median'})")
    print(f"  {'forward + loss':<28} {typical(t[0] for t in times) * 1e3:9.2f} ms")
    print(f"  {'backward':<28} {typical(t[1] for t in times) * 1e3:9.2f} ms")
    print(f"  {'optimizer step + zero_grad':<28} "
          f"{typical(t[2] for t in times) * 1e3:9.2f} ms")
    step = typical(sum(t) for t in times)
    print_rate("training step", step, batch)

    print(f"  {'per layer (ms)':<28} {'forward':>9} {'backward':>9}")
    activation = images
    forward_total = backward_total = 0.0
    for i, (name, layer) in enumerate(layers):
        inp = activation.detach().requires_grad_(i > 0)
        out = {}

        def run_forward():
            out["y"] = layer(inp)

        forward = typical_seconds(warmup, steps, run_forward)
        grad = torch.randn(out["y"].shape)
        def setup_backward():
            run_forward()
            inp.grad = None  # a fresh input gradient, not a sum of all runs

        backward = typical_seconds(warmup, steps, lambda: out["y"].backward(grad), setup_backward)
        print(f"  {name:<28} {forward * 1e3:9.3f} {backward * 1e3:9.3f}")
        forward_total += forward
        backward_total += backward
        activation = out["y"]
    logits = activation.detach().requires_grad_()
    out = {}

    def run_loss():
        out["loss"] = loss_fn(logits, labels)

    forward = typical_seconds(warmup, steps, run_loss)
    def setup_loss_backward():
        run_loss()
        logits.grad = None

    backward = typical_seconds(warmup, steps, lambda: out["loss"].backward(), setup_loss_backward)
    print(f"  {'cross-entropy':<28} {forward * 1e3:9.3f} {backward * 1e3:9.3f}")
    forward_total += forward
    backward_total += backward
    optimizer_time = typical_seconds(warmup, steps, optimizer.step)
    zero_time = typical_seconds(warmup, steps, lambda: optimizer.zero_grad(set_to_none=False))
    print(f"  {'optimizer step':<28} {optimizer_time * 1e3:9.3f}")
    print(f"  {'zero_grad':<28} {zero_time * 1e3:9.3f}")
    total = forward_total + backward_total + optimizer_time + zero_time
    print(f"  {'layers total':<28} {forward_total * 1e3:9.3f} {backward_total * 1e3:9.3f}"
          f"   (sum {total * 1e3:.2f} ms of a {step * 1e3:.2f} ms step)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="64,128,256", help="batch sizes, comma-separated")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fastest", action="store_true",
                        help="print the fastest run instead of the median (for a busy machine)")
    args = parser.parse_args()
    global REPORT_FASTEST
    REPORT_FASTEST = args.fastest
    torch.set_num_threads(args.threads)
    for batch in (int(b) for b in args.batch.split(",")):
        bench_batch(batch, args.optimizer, args.warmup, args.steps)


if __name__ == "__main__":
    main()
