# Reference values for test/engine/test_conv.cpp, from PyTorch (run with PyTorch 1.13, CPU):
#   python3 test/engine/conv_reference.py
# prints the C++ initializers pasted into the test. Inputs are exact binary fractions from
# pattern(), which the C++ test rebuilds the same way; everything is float64, and the outputs
# and gradients come out exact too.
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def pattern(shape, multiplier, modulus, shift, scale):
    """((i * multiplier) % modulus - shift) / scale for i = 0, 1, ... in row-major order."""
    count = 1
    for size in shape:
        count *= size
    i = torch.arange(count, dtype=torch.int64)
    return (((i * multiplier) % modulus).to(torch.float64) - shift).div(scale).reshape(shape)


def initializer(name, t):
    values = ", ".join(repr(float(v)) for v in t.flatten().tolist())
    return f"const std::vector<double> {name} = {{{values}}};"


def case(tag, x_shape, w_shape, with_bias, stride, padding, dilation, groups):
    """conv2d of the pattern inputs; gradients of sum(y * r) for the pattern projection r."""
    x = pattern(x_shape, 7, 13, 6, 8).requires_grad_()
    w = pattern(w_shape, 5, 11, 5, 16).requires_grad_()
    b = pattern([w_shape[0]], 1, 4, 1.5, 4).requires_grad_() if with_bias else None
    y = F.conv2d(x, w, b, stride, padding, dilation, groups)
    (y * pattern(list(y.shape), 3, 7, 3, 4)).sum().backward()
    print(f"// {tag}: output {list(y.shape)}")
    print(initializer(f"k{tag}Output", y.detach()))
    print(initializer(f"k{tag}InputGrad", x.grad))
    print(initializer(f"k{tag}WeightGrad", w.grad))
    if with_bias:
        print(initializer(f"k{tag}BiasGrad", b.grad))


case("Grouped", [2, 4, 5, 4], [4, 2, 3, 2], True, (2, 1), (1, 2), (1, 2), 2)
case("Unbatched", [3, 6, 6], [2, 3, 3, 3], False, 2, 1, 1, 1)
