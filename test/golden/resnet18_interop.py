#!/usr/bin/env python3
"""ResNet-18 weights from torchvision run in ember, and ember's weights file loads in PyTorch.

    /usr/bin/python3 test/golden/resnet18_interop.py --ember-infer bin/ember_infer

ctest runs it (test `resnet18_interop`). Without PyTorch and torchvision it prints
"[ember] SKIPPED: ..." and exits with 77, which ctest reports as a skipped test.

1. torchvision's resnet18, seeded, with random BatchNorm affine parameters and a few train-mode
   forwards on random data so that the running statistics are not the initial ones; then eval.
2. Its state_dict (num_batches_tracked as int64 included) to W.safetensors and an input
   [2, 3, 224, 224] to X.safetensors, in a temporary folder.
3. bin/ember_infer --arch resnet18 --weights W --input X --output Y --eval --device cpu
   --save-weights W2, then ember's logits Y against PyTorch's (float32 tolerance).
4. W2 loaded into a fresh torchvision resnet18 with strict load_state_dict: every tensor equals
   the original bit for bit (dtype included), and the logits equal the original model's.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE for this test

try:
    import numpy as np
    import torch
    import torchvision
except ImportError as error:
    print("[ember] SKIPPED: PyTorch not found (%s: %s)" % (sys.executable, error))
    sys.exit(SKIP)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (the reader/writer next to this file)

# float32 through 20 layers at 224x224: both sides round differently in every convolution.
TOLERANCE = 2e-5  # on max |ember - torch| / max |torch|; measured: about 5e-7


def trained_looking_resnet18():
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 96, 96) * 1.5 + 0.3)
    return model.eval()


def to_numpy_state(model):
    return {name: t.detach().cpu().numpy() for name, t in model.state_dict().items()}


def from_numpy_state(arrays):
    return {name: torch.from_numpy(np.array(a)) for name, a in arrays.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ember-infer", required=True, help="path of bin/ember_infer")
    args = parser.parse_args()

    model = trained_looking_resnet18()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = model(x)
    print("PyTorch %s, torchvision %s: resnet18 logits %s, max |logit| %.4g" % (
        torch.__version__, torchvision.__version__, list(expected.shape),
        expected.abs().max().item()))

    with tempfile.TemporaryDirectory(prefix="ember-interop-") as folder:
        weights = os.path.join(folder, "W.safetensors")
        inputs = os.path.join(folder, "X.safetensors")
        outputs = os.path.join(folder, "Y.safetensors")
        converted = os.path.join(folder, "W2.safetensors")
        state = to_numpy_state(model)
        assert state["bn1.num_batches_tracked"].dtype == np.int64
        safetensors_io.write(weights, state, {"format": "pt"})
        safetensors_io.write(inputs, {"input": x.numpy()})

        command = [args.ember_infer, "--arch", "resnet18", "--weights", weights, "--input", inputs,
                   "--output", outputs, "--eval", "--device", "cpu", "--save-weights", converted]
        start = time.time()
        run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(run.stdout.rstrip())
        if run.returncode != 0:
            print("FAILED: ember_infer exited with %d" % run.returncode)
            return 1
        print("ember_infer took %.2f s in all" % (time.time() - start))

        # ember's logits against PyTorch's.
        got = torch.from_numpy(np.array(safetensors_io.read(outputs)[0]["output"]))
        error = (got.double() - expected.double()).abs()
        scale = expected.abs().max().item()
        relative = error.max().item() / scale
        print("ember vs PyTorch logits: max abs error %.3g, max abs error / max |logit| %.3g "
              "(tolerance %g), argmax %s vs %s" % (
                  error.max().item(), relative, TOLERANCE, got.argmax(1).tolist(),
                  expected.argmax(1).tolist()))
        failures = []
        if got.shape != expected.shape or got.dtype != torch.float32:
            failures.append("output is %s %s, expected %s float32" % (
                got.dtype, list(got.shape), list(expected.shape)))
        elif relative > TOLERANCE:
            failures.append("ember's logits differ from PyTorch's beyond the tolerance")

        # ember's weights file in PyTorch: strict loading, every tensor the same bits.
        written = from_numpy_state(safetensors_io.read(converted)[0])
        fresh = torchvision.models.resnet18()
        fresh.load_state_dict(written, strict=True)
        fresh.eval()
        original = model.state_dict()
        changed = [name for name, t in fresh.state_dict().items()
                   if t.dtype != original[name].dtype or not torch.equal(t, original[name])]
        with torch.no_grad():
            reloaded = fresh(x)
        print("ember's W2 in PyTorch: %d tensors loaded strictly, %d differ; logits %s" % (
            len(written), len(changed),
            "identical" if torch.equal(reloaded, expected)
            else "differ by %.3g" % (reloaded - expected).abs().max().item()))
        if changed:
            failures.append("tensors changed on the way through ember: %s" % ", ".join(changed[:5]))
        if not torch.equal(reloaded, expected):
            failures.append("PyTorch's logits with ember's weights file differ")

    for failure in failures:
        print("FAILED: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
