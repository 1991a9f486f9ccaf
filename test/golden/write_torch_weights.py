#!/usr/bin/env python3
"""A real PyTorch state_dict of a registry model, and PyTorch's logits with it.

    /usr/bin/python3 test/golden/write_torch_weights.py

writes two files under data/interop/:

    cifar_cnn_weights.safetensors  the state_dict of PyTorch's CIFAR tutorial net (ember's
                                   `cifar_cnn`), F32, under its state_dict names, as anyone
                                   would save it: torch.manual_seed(0), PyTorch's default
                                   initialization, then one SGD step (lr 0.1, momentum 0.9) on a
                                   random batch, so the values are not those of the init alone
    cifar_cnn_logits.safetensors   `input` F32 [4, 3, 32, 32] (random), and the trained net's
                                   logits on it in eval mode: `logits` F32 [4, 10] in float32,
                                   `logits_f64` F64 [4, 10] with the same weights and input
                                   converted to float64

ember's test (test/layers/test_checkpoint.cpp) loads the weights with load_weights into
make_model("cifar_cnn") and compares its logits with both. The files are written with
safetensors_io.py (numpy only); PyTorch runs on one thread, so a rerun gives the same bytes.
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402  (the reader/writer next to this file)

OUTPUT_DIR = os.path.join(HERE, "data", "interop")


# The tutorial's CNN, with its names: one definition, in make_golden.py.
from make_golden import CifarCNN as Net  # noqa: E402


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    optimizer.zero_grad()
    F.cross_entropy(net(images), labels).backward()
    optimizer.step()

    net.eval()
    state = {name: t.detach().numpy().copy() for name, t in net.state_dict().items()}
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits = net(x)
        logits_f64 = net.double()(x.double())

    os.makedirs(OUTPUT_DIR, exist_ok=True)
    weights = os.path.join(OUTPUT_DIR, "cifar_cnn_weights.safetensors")
    safetensors_io.write(weights, state, {"format": "pt", "producer": "write_torch_weights.py"})
    answers = os.path.join(OUTPUT_DIR, "cifar_cnn_logits.safetensors")
    safetensors_io.write(
        answers,
        {"input": x.numpy(), "logits": logits.numpy(), "logits_f64": logits_f64.numpy()},
        {"model": "cifar_cnn", "mode": "eval", "torch": torch.__version__},
    )
    for path in (weights, answers):
        print("wrote %s (%d bytes)" % (os.path.relpath(path, HERE), os.path.getsize(path)))
    print("logits[0] =", logits[0].tolist())


if __name__ == "__main__":
    main()
