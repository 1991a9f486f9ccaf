"""Generate ember's golden test data with PyTorch.

Every layer and model that ember re-implements is built here in PyTorch, filled with a
deterministic closed-form pattern (no random number generator: the same values can be computed
in a few lines of C++), run once forward and backward in float64 on the CPU, and the results
(outputs, loss, gradients, BatchNorm statistics) are written to small safetensors files under
test/golden/data/. ember's C++ tests compute the same fill, run the same computation and compare.
The files are committed, so the C++ tests never need PyTorch.

Usage:
    /usr/bin/python3 test/golden/make_golden.py                 # everything
    /usr/bin/python3 test/golden/make_golden.py --only resnet20 # one layer case or model
    /usr/bin/python3 test/golden/make_golden.py --list          # the case names

README.md (next to this file) documents the fill contract and the contents of every file.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (the reader/writer next to this file)

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

# --------------------------------------------------------------------------------------------
# The deterministic fill. This is the contract with the C++ side: change nothing here without
# changing README.md and ember's C++ fill at the same time (and regenerating every file).
# --------------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SAMPLE_INDEX_OFFSET = 1000003  # sample indices use splitmix64(fnv1a64(name) + 1000003 + j)
NUM_SAMPLES = 8  # gradient entries sampled per model parameter
NUM_BUFFER_SAMPLES = 4  # entries sampled per model BatchNorm buffer


def fnv1a64(name):
    """FNV-1a, 64-bit, over the UTF-8 bytes of `name`."""
    h = FNV_OFFSET
    for byte in name.encode("utf-8"):
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


def splitmix64_scalar(x):
    """splitmix64 finalizer on one Python int (the plain reference version)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def splitmix64(x):
    """splitmix64 on a numpy uint64 array; uint64 arithmetic wraps modulo 2^64 like C++'s."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hashes(name, count, start=0):
    """h_i = splitmix64(fnv1a64(name) + start + i mod 2^64) for i = 0..count-1 (uint64)."""
    base = np.uint64((fnv1a64(name) + start) & MASK64)
    with np.errstate(over="ignore"):
        return splitmix64(np.arange(count, dtype=np.uint64) + base)


def uniform01(name, count):
    """u_i = (h_i >> 11) * 2^-53, uniform in [0, 1), exact in float64."""
    return (hashes(name, count) >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def uniform_pm1(name, count):
    """s_i = 2 u_i - 1, uniform in [-1, 1) (exact in float64)."""
    return 2.0 * uniform01(name, count) - 1.0


def fill_values(name, shape):
    """The value of every element of the parameter/buffer `name` with `shape`, as float64
    (row-major). Rules, in order:
      >= 2 dims:               s / sqrt(numel / shape[0])   (numel / shape[0] is an exact integer)
      1 dim, "...running_var": 0.5 + u
      1 dim, "...running_mean": 0.1 * s
      1 dim, "...weight":      1 + 0.1 * s
      any other 1 dim:         0.1 * s
    (0-d and integer tensors are not filled: they stay 0.)"""
    shape = tuple(int(d) for d in shape)
    numel = int(np.prod(shape, dtype=np.int64))
    u = uniform01(name, numel)
    s = 2.0 * u - 1.0
    if len(shape) >= 2:
        fan = numel // shape[0]
        values = s / math.sqrt(float(fan))
    elif len(shape) == 1:
        if name.endswith("running_var"):
            values = 0.5 + u
        elif name.endswith("running_mean"):
            values = 0.1 * s
        elif name.endswith("weight"):
            values = 1.0 + 0.1 * s
        else:
            values = 0.1 * s
    else:
        raise ValueError(f"{name}: 0-d tensors are not filled")
    return values.reshape(shape)


def input_values(name, shape):
    """Inputs and loss projections: plain s in [-1, 1), whatever the shape."""
    shape = tuple(int(d) for d in shape)
    return uniform_pm1(name, int(np.prod(shape, dtype=np.int64))).reshape(shape)


def class_targets(count, num_classes):
    """t_i = splitmix64(fnv1a64("target") + i) mod num_classes."""
    return (hashes("target", count) % np.uint64(num_classes)).astype(np.int64)


def sample_indices(name, numel, count=NUM_SAMPLES):
    """idx_j = splitmix64(fnv1a64(name) + 1000003 + j) mod numel, j = 0..count-1."""
    return (hashes(name, count, start=SAMPLE_INDEX_OFFSET) % np.uint64(numel)).astype(np.int64)


def fill_module(module):
    """Fill every floating parameter and buffer of `module` by its state_dict name; integer
    buffers (BatchNorm's num_batches_tracked) are set to 0."""
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.is_floating_point() and tensor.dim() > 0:
                tensor.copy_(torch.from_numpy(fill_values(name, tensor.shape)))
            else:
                tensor.zero_()


def input_tensor(name, shape, requires_grad=False):
    return torch.tensor(input_values(name, shape), dtype=torch.float64, requires_grad=requires_grad)


# --------------------------------------------------------------------------------------------
# Building blocks that are not in torch.nn (einops' Rearrange, lucidrains' linformer/vit_pytorch
# and the CIFAR ResNets), written out so that the script has no dependency beyond torch.
# --------------------------------------------------------------------------------------------


class Rearrange(nn.Module):
    """einops Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=p1, p2=p2): cut an image
    into p1 x p2 patches and flatten each patch (row of the patch, column, channel innermost)."""

    def __init__(self, p1, p2):
        super().__init__()
        self.p1, self.p2 = p1, p2

    def extra_repr(self):
        return f"'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1={self.p1}, p2={self.p2}"

    def forward(self, x):
        b, c, H, W = x.shape
        h, w = H // self.p1, W // self.p2
        x = x.reshape(b, c, h, self.p1, w, self.p2)  # b c h p1 w p2
        x = x.permute(0, 2, 4, 3, 5, 1)  # b h w p1 p2 c
        return x.reshape(b, h * w, self.p1 * self.p2 * c)


class LinformerSelfAttention(nn.Module):
    """linformer.LinformerSelfAttention (defaults: one_kv_head=False, share_kv=False,
    dropout=0). Keys and values are projected along the sequence from seq_len to k."""

    def __init__(self, dim, seq_len, k=256, heads=8, dim_head=None, dropout=0.0):
        super().__init__()
        assert (dim % heads) == 0, "dimension must be divisible by the number of heads"
        self.seq_len = seq_len
        self.k = k
        self.heads = heads
        dim_head = dim // heads if dim_head is None else dim_head
        self.dim_head = dim_head
        # Registration order matters for the state_dict: to_q, to_k, proj_k, to_v, proj_v.
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_k = nn.Linear(dim, dim_head * heads, bias=False)
        self.proj_k = nn.Parameter(torch.zeros(seq_len, k))
        self.to_v = nn.Linear(dim, dim_head * heads, bias=False)
        self.proj_v = nn.Parameter(torch.zeros(seq_len, k))
        self.dropout = nn.Dropout(dropout)
        self.to_out = nn.Linear(dim_head * heads, dim)

    def forward(self, x):
        b, n, _ = x.shape
        d_h, h, k = self.dim_head, self.heads, self.k
        queries = self.to_q(x)
        keys = self.to_k(x)
        values = self.to_v(x)
        assert n == self.seq_len, f"the sequence length must be {self.seq_len}, got {n}"
        # Project keys and values along the sequence: [b, n, d] x [n, k] -> [b, k, d].
        keys = torch.einsum("bnd,nk->bkd", keys, self.proj_k)
        values = torch.einsum("bnd,nk->bkd", values, self.proj_v)
        queries = queries.reshape(b, n, h, -1).transpose(1, 2)  # b h n d_h
        keys = keys.reshape(b, k, -1, d_h).transpose(1, 2)  # b h k d_h
        values = values.reshape(b, k, -1, d_h).transpose(1, 2)  # b h k d_h
        dots = torch.einsum("bhnd,bhkd->bhnk", queries, keys) * (d_h**-0.5)
        attn = self.dropout(dots.softmax(dim=-1))
        out = torch.einsum("bhnk,bhkd->bhnd", attn, values)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


class PreNorm(nn.Module):
    """linformer.PreNorm: fn(LayerNorm(x)); fn is registered before norm."""

    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    """linformer.FeedForward: w2(dropout(GELU(w1(x)))), hidden width dim * mult."""

    def __init__(self, dim, mult=4, dropout=0.0):
        super().__init__()
        self.w1 = nn.Linear(dim, dim * mult)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.w2 = nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.w2(self.dropout(self.act(self.w1(x))))


class SequentialSequence(nn.Module):
    """linformer.SequentialSequence: for each (f, g): x = x + f(x); x = x + g(x)."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        for f, g in self.layers:
            x = x + f(x)
            x = x + g(x)
        return x


class Linformer(nn.Module):
    """linformer.Linformer (reversible=False, dropout=0)."""

    def __init__(self, dim, seq_len, depth, k=256, heads=8):
        super().__init__()
        layers = nn.ModuleList([])
        for _ in range(depth):
            attn = LinformerSelfAttention(dim, seq_len, k=k, heads=heads)
            ff = FeedForward(dim)
            layers.append(nn.ModuleList([PreNorm(dim, attn), PreNorm(dim, ff)]))
        self.net = SequentialSequence(layers)

    def forward(self, x):
        return self.net(x)


class EfficientViT(nn.Module):
    """vit_pytorch.efficient.ViT (the version whose patch embedding has no LayerNorms),
    pool='cls', channels=3."""

    def __init__(self, image_size, patch_size, num_classes, dim, transformer, channels=3):
        super().__init__()
        assert image_size % patch_size == 0
        num_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size**2
        self.to_patch_embedding = nn.Sequential(
            Rearrange(patch_size, patch_size),
            nn.Linear(patch_dim, dim),
        )
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = transformer
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        cls_tokens = self.cls_token.expand(b, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embedding[:, : (n + 1)]
        x = self.transformer(x)
        x = x[:, 0]
        x = self.to_latent(x)
        return self.mlp_head(x)


class MnistNet(nn.Module):
    """The MLP of the distributed auto-differentiation (dAD) experiments."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten(1)
        self.l1 = nn.Linear(784, 2048)
        self.mid = nn.Sequential(
            nn.Linear(2048, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
            nn.Linear(1024, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(),
        )  # fmt: skip
        self.l5 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.flatten(x)
        x = F.relu(self.l1(x))
        x = self.mid(x)
        return F.log_softmax(self.l5(x), dim=1)


class Logistics(nn.Module):
    """Multinomial logistic regression on flattened images."""

    def __init__(self, in_features=3072, num_classes=10):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.linear(torch.flatten(x, 1))


class CifarCNN(nn.Module):
    """The network of PyTorch's 'Training a classifier' CIFAR-10 tutorial."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MnistCNN(nn.Module):
    """bin/train_mnist's small CNN (make demo): two 3x3 convolutions, two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class CifarBasicBlock(nn.Module):
    """BasicBlock of He et al.'s CIFAR ResNets with the option-A (parameter-free) shortcut:
    subsample by 2 and zero-pad planes//4 channels on each side."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            pad = planes // 4
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, num_blocks, num_classes=10):
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, num_blocks[0], 1)
        self.layer2 = self._make_layer(32, num_blocks[1], 2)
        self.layer3 = self._make_layer(64, num_blocks[2], 2)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        blocks = []
        for s in [stride] + [1] * (num_blocks - 1):
            blocks.append(CifarBasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


def resnet50_groupnorm(num_classes=10):
    """torchvision's Bottleneck ResNet-50 with every norm layer a GroupNorm(ceil(C/32), C)."""
    return torchvision.models.resnet50(
        num_classes=num_classes, norm_layer=lambda c: nn.GroupNorm(math.ceil(c / 32), c)
    )


def resnet18_cifar(num_classes=10):
    """torchvision's ResNet-18 with a 3x3 stride-1 stem and no max pooling (for 32x32 inputs)."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def vit_linformer():
    return EfficientViT(
        image_size=224,
        patch_size=32,
        num_classes=2,
        dim=128,
        transformer=Linformer(dim=128, seq_len=50, depth=12, heads=8, k=64),
    )


# --------------------------------------------------------------------------------------------
# Layer cases: (case name, constructor, input shape[, how to call the layer]).
# --------------------------------------------------------------------------------------------


class CrossEntropy(nn.Module):
    """Mean cross-entropy of the input logits [N, C] against the contract's class targets."""

    def forward(self, x):
        return F.cross_entropy(x, torch.from_numpy(class_targets(x.shape[0], x.shape[1])))


def call_mha(layer, x):
    return layer(x, x, x, need_weights=False)[0]


LAYER_CASES = [
    ("linear", lambda: nn.Linear(5, 4), [3, 5]),
    ("linear_nobias", lambda: nn.Linear(5, 4, bias=False), [3, 5]),
    ("linear_3d", lambda: nn.Linear(5, 4), [2, 3, 5]),
    ("conv2d_basic", lambda: nn.Conv2d(3, 4, 3), [2, 3, 7, 7]),
    ("conv2d_stride_pad", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), [2, 3, 8, 8]),
    ("conv2d_dilation_groups",
     lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), [2, 4, 7, 7]),
    ("conv2d_depthwise_nobias",
     lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), [2, 4, 6, 6]),
    ("conv2d_rect",
     lambda: nn.Conv2d(2, 3, (3, 1), stride=(2, 1), padding=(1, 0)), [1, 2, 6, 5]),
    ("conv2d_1x1_stride2_nobias", lambda: nn.Conv2d(4, 6, 1, stride=2, bias=False), [2, 4, 7, 7]),
    ("conv2d_7x7_stem", lambda: nn.Conv2d(3, 4, 7, stride=2, padding=3, bias=False), [1, 3, 12, 12]),
    ("batchnorm1d", lambda: nn.BatchNorm1d(5), [6, 5]),
    ("batchnorm1d_seq", lambda: nn.BatchNorm1d(3), [4, 3, 5]),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), [4, 3, 5, 5]),
    ("batchnorm2d_noaffine", lambda: nn.BatchNorm2d(3, affine=False), [4, 3, 5, 5]),
    ("groupnorm", lambda: nn.GroupNorm(2, 6), [2, 6, 4, 4]),
    ("groupnorm_single", lambda: nn.GroupNorm(1, 4), [2, 4, 3, 3]),
    ("groupnorm_1x1", lambda: nn.GroupNorm(2, 8), [2, 8, 1, 1]),
    ("layernorm", lambda: nn.LayerNorm(8), [2, 5, 8]),
    ("layernorm_2d", lambda: nn.LayerNorm([4, 5]), [3, 4, 5]),
    ("layernorm_noaffine", lambda: nn.LayerNorm(8, elementwise_affine=False), [2, 5, 8]),
    ("maxpool", lambda: nn.MaxPool2d(3, 2, 1), [2, 3, 9, 9]),
    ("maxpool_ceil", lambda: nn.MaxPool2d(2, ceil_mode=True), [1, 2, 5, 5]),
    ("avgpool", lambda: nn.AvgPool2d(3, 2, 1), [2, 3, 8, 8]),
    ("avgpool_exclude_pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), [2, 3, 8, 8]),
    ("adaptive_avgpool", lambda: nn.AdaptiveAvgPool2d((3, 2)), [2, 3, 7, 5]),
    ("adaptive_avgpool_1", lambda: nn.AdaptiveAvgPool2d(1), [2, 3, 5, 5]),
    ("relu", lambda: nn.ReLU(), [3, 7]),
    ("gelu", lambda: nn.GELU(), [3, 7]),
    ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), [3, 7]),
    ("log_softmax", lambda: nn.LogSoftmax(dim=1), [3, 7]),
    ("cross_entropy", lambda: CrossEntropy(), [6, 5]),
    ("mha", lambda: nn.MultiheadAttention(16, 4, batch_first=True), [2, 5, 16], call_mha),
    ("linformer_attention",
     lambda: LinformerSelfAttention(dim=16, seq_len=5, k=3, heads=4), [2, 5, 16]),
    ("patch_embedding",
     lambda: nn.Sequential(Rearrange(4, 4), nn.Linear(48, 8)), [2, 3, 8, 8]),
    ("flatten", lambda: nn.Flatten(), [2, 3, 4, 5]),
]  # fmt: skip

# Model cases: (name, constructor, input shape, number of classes, number of parameters).
MODEL_CASES = [
    ("mnistnet", MnistNet, [4, 1, 28, 28], 10, 4_368_138),
    ("vit_linformer", vit_linformer, [2, 3, 224, 224], 2, 2_851_842),
    ("resnet50_gn", resnet50_groupnorm, [2, 3, 32, 32], 10, 23_528_522),
    ("logistics", Logistics, [2, 3, 32, 32], 10, 30_730),
    ("cifar_cnn", CifarCNN, [2, 3, 32, 32], 10, 62_006),
    ("mnist_cnn", MnistCNN, [2, 1, 28, 28], 10, 421_642),
    ("resnet18_cifar", resnet18_cifar, [2, 3, 32, 32], 10, 11_173_962),
    ("resnet20", lambda: CifarResNet([3, 3, 3]), [2, 3, 32, 32], 10, 269_722),
    ("resnet56", lambda: CifarResNet([9, 9, 9]), [2, 3, 32, 32], 10, 853_018),
    ("resnet18", torchvision.models.resnet18, [2, 3, 64, 64], 1000, 11_689_512),
    ("resnet34", torchvision.models.resnet34, [2, 3, 64, 64], 1000, 21_797_672),
    ("resnet50", torchvision.models.resnet50, [2, 3, 64, 64], 1000, 25_557_032),
]


# --------------------------------------------------------------------------------------------
# Recording.
# --------------------------------------------------------------------------------------------


def to_numpy(t):
    return t.detach().cpu().numpy().copy()


def describe(path, tensors, extra=""):
    size = os.path.getsize(path)
    rel = os.path.relpath(path, os.path.dirname(DATA_DIR))
    print(f"{rel:48s} {size:8d} bytes  {len(tensors):4d} tensors  {extra}")


def record_layer(case, make, input_shape, call=None):
    torch.manual_seed(0)  # only construction uses it; every value is overwritten by the fill
    layer = make().double()
    fill_module(layer)
    layer.train()
    call = call or (lambda m, x: m(x))

    x = input_tensor("input", input_shape, requires_grad=True)
    out = call(layer, x)
    projection = input_tensor("projection", out.shape)
    loss = (out * projection).sum()
    loss.backward()

    tensors = {
        "input": to_numpy(x),
        "output": to_numpy(out),
        "input_grad": to_numpy(x.grad),
    }
    if isinstance(layer, CrossEntropy):
        tensors["target"] = class_targets(input_shape[0], input_shape[1])
    for name, p in layer.named_parameters():
        tensors["grad." + name] = to_numpy(p.grad)
    buffers = list(layer.named_buffers())
    for name, b in buffers:
        tensors["buffer." + name] = to_numpy(b)
    if buffers:  # BatchNorm: the output in eval mode, with the running statistics just updated
        layer.eval()
        with torch.no_grad():
            tensors["output_eval"] = to_numpy(call(layer, x))

    metadata = {
        "case": case,
        "module": repr(layer),
        "input_shape": json.dumps(list(input_shape)),
    }
    path = os.path.join(DATA_DIR, "layers", case + ".safetensors")
    safetensors_io.write(path, tensors, metadata)
    describe(path, tensors, f"output {list(out.shape)}  loss {loss.item():.6g}")


def record_model(name, make, input_shape, num_classes, expected_parameters):
    torch.manual_seed(0)
    model = make().double()
    num_parameters = sum(p.numel() for p in model.parameters())
    assert num_parameters == expected_parameters, (name, num_parameters, expected_parameters)
    fill_module(model)
    model.train()

    x = input_tensor("input", input_shape)
    targets = class_targets(input_shape[0], num_classes)
    out = model(x)
    assert out.shape == (input_shape[0], num_classes), out.shape
    loss = F.cross_entropy(out, torch.from_numpy(targets))
    loss.backward()

    tensors = {
        "target": targets,
        "output": to_numpy(out),
        "loss": to_numpy(loss),
    }
    for pname, p in model.named_parameters():
        grad = p.grad.detach().reshape(-1)
        tensors["grad_norm." + pname] = to_numpy(torch.linalg.vector_norm(grad))
        idx = torch.from_numpy(sample_indices(pname, grad.numel()))
        tensors["grad_sample." + pname] = to_numpy(grad[idx])
    for bname, b in model.named_buffers():
        if b.is_floating_point():
            flat = b.detach().reshape(-1)
            tensors["buffer_sum." + bname] = to_numpy(flat.sum())
            idx = torch.from_numpy(sample_indices(bname, flat.numel(), NUM_BUFFER_SAMPLES))
            tensors["buffer_sample." + bname] = to_numpy(flat[idx])
        else:
            tensors["buffer." + bname] = to_numpy(b)
    model.eval()
    with torch.no_grad():
        tensors["output_eval"] = to_numpy(model(x))

    state = model.state_dict()
    param_names = {n for n, _ in model.named_parameters()}
    metadata = {
        "model": name,
        "input_shape": json.dumps(list(input_shape)),
        "num_classes": str(num_classes),
        "num_parameters": str(num_parameters),
        "loss": "cross_entropy(output, target), mean over the batch",
        # [name, shape] for every parameter, in state_dict order
        "parameter_names": json.dumps(
            [[n, list(t.shape)] for n, t in state.items() if n in param_names]
        ),
        # [name, shape, dtype] for every buffer, in state_dict order
        "buffer_names": json.dumps(
            [[n, list(t.shape), str(t.dtype).replace("torch.", "")]
             for n, t in state.items() if n not in param_names]
        ),
    }  # fmt: skip
    path = os.path.join(DATA_DIR, "models", name + ".safetensors")
    safetensors_io.write(path, tensors, metadata)
    describe(path, tensors, f"{num_parameters} parameters  loss {loss.item():.10g}")


# --------------------------------------------------------------------------------------------
# Self-check of the fill: a few values the C++ side can assert exactly.
# --------------------------------------------------------------------------------------------

# (name, shape) pairs: the layer input name, a Linear(5, 4)'s weight and bias, mnistnet's first
# layer, the BatchNorm after ResNet's stem, and the vit_linformer's first key projection.
SELF_CHECK = [
    ("input", [2, 3, 32, 32]),
    ("weight", [4, 5]),
    ("bias", [4]),
    ("l1.weight", [2048, 784]),
    ("bn1.weight", [64]),
    ("bn1.running_mean", [64]),
    ("bn1.running_var", [64]),
    ("transformer.net.layers.0.0.fn.proj_k", [50, 64]),
]


def self_check(write_file):
    """Check the vectorized fill against the plain-integer one, print values for README.md and,
    if asked, write data/fill_check.safetensors."""
    tensors = {}
    shapes = {}
    print("fill self-check (first values; full precision with repr):")
    for name, shape in SELF_CHECK:
        numel = int(np.prod(shape))
        h = fnv1a64(name)
        # The numpy version must agree with the plain Python-integer one, including where
        # fnv1a64(name) + i wraps around 2^64.
        for i in [0, 1, 7, numel - 1, (1 << 64) - 1 - h, (1 << 64) - h]:
            ref = splitmix64_scalar((h + i) & MASK64)
            got = int(hashes(name, 1, start=i)[0])
            assert ref == got, (name, i, ref, got)
        first = input_values(name, shape) if name == "input" else fill_values(name, shape)
        first = first.reshape(-1)[:NUM_SAMPLES]
        # Stored as I64 with the same 64 bits: ember, like PyTorch, has no unsigned 64-bit dtype.
        tensors["fnv1a64." + name] = np.array(h, dtype=np.uint64).view(np.int64)
        tensors["u." + name] = uniform01(name, NUM_SAMPLES)
        tensors["value." + name] = first
        tensors["sample_index." + name] = sample_indices(name, numel)
        shapes[name] = shape
        print(f"  fnv1a64({name!r}) = 0x{h:016x}")
        print(f"    u[0..3]     = {', '.join(repr(float(v)) for v in tensors['u.' + name][:4])}")
        print(f"    value[0..3] = {', '.join(repr(float(v)) for v in first[:4])}  (shape {shape})")
        print(f"    sample idx  = {tensors['sample_index.' + name].tolist()}  (numel {numel})")
    for classes in [2, 10, 1000]:
        tensors[f"target.{classes}"] = class_targets(16, classes)
        print(f"  targets[0..15] for {classes} classes = {tensors[f'target.{classes}'].tolist()}")
    splitmix = splitmix64(np.arange(3, dtype=np.uint64))
    tensors["splitmix64.0_1_2"] = splitmix.view(np.int64)
    print(f"  splitmix64(0), (1), (2) = {[hex(int(v)) for v in splitmix]}")

    if write_file:
        path = os.path.join(DATA_DIR, "fill_check.safetensors")
        metadata = {
            "shapes": json.dumps(shapes),
            "note": "value.<name>: the first 8 filled values of a tensor <name> with "
            "shapes[<name>] ('input' uses the input rule); u.<name>: u_0..u_7; "
            "sample_index.<name>: idx_0..idx_7 for numel = product of shapes[<name>]; "
            "target.<C>: the first 16 class targets for C classes",
        }
        safetensors_io.write(path, tensors, metadata)
        describe(path, tensors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NAME", help="one layer case or model (or fill_check)")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    args = parser.parse_args()

    layer_names = [c[0] for c in LAYER_CASES]
    model_names = [c[0] for c in MODEL_CASES]
    if args.list:
        print("layers:", " ".join(layer_names))
        print("models:", " ".join(model_names))
        print("other: fill_check")
        return
    if args.only and args.only not in layer_names + model_names + ["fill_check"]:
        parser.error(f"unknown case {args.only!r}; --list shows the names")

    # One thread: the same summation order on every run and every machine.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.join(DATA_DIR, "layers"), exist_ok=True)
    os.makedirs(os.path.join(DATA_DIR, "models"), exist_ok=True)

    self_check(write_file=args.only in (None, "fill_check"))
    for case in LAYER_CASES:
        if args.only in (None, case[0]):
            record_layer(*case)
    for case in MODEL_CASES:
        if args.only in (None, case[0]):
            record_model(*case)


if __name__ == "__main__":
    main()
