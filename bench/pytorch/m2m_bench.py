#!/usr/bin/env python3
"""PyTorch twin of `m2m-burn-plugin/src/bin/m2m-bench.rs`, for a side-by-side timing.

    python bench/pytorch/m2m_bench.py [resnet32|small-cnn] [batch] [channels] [size] [iterations]
    python bench/pytorch/m2m_bench.py conv [batch] [size] [iterations]
    python bench/pytorch/m2m_bench.py batchnorm [batch] [size] [iterations]

Same workload, same defaults (resnet32 128 1 28 5), same output lines with `pytorch`
in place of `cpu`:
  * training step: forward (train mode), mean CE, backward, SGD (lr 0.01, momentum 0.9,
    dampening 0, no weight decay) on a uniform [batch, channels, size, size] batch with
    labels i % 10;
  * M2m iteration: translation of the planned slots of that class-balanced batch through
    f and g (g a deep copy of f, as in the reference code's `train_net` + `generation`,
    spec section 1.4), FMNIST-LT rho 100 counts, paper settings, then the training step;
  * eval forward: eval mode, no autograd.
Medians over `iterations` after one warm-up; each timing ends with a read of the loss to
the host (`.item()`), as the Rust binary does with `into_scalar`.

`conv` times the layers of `m2m-bench conv`: the three convolution kernels of a training
step (forward, input gradient, weight gradient, as autograd calls them through
`aten.convolution_backward`) per stride-1 3x3 layer shape of ResNet-32.

Threads: M2M_BENCH_THREADS, else RAYON_NUM_THREADS (so one variable limits both
programs), else torch's default (OMP_NUM_THREADS or the core count).

Device: M2M_BENCH_DEVICE=cuda runs the model benchmark on the GPU (the twin of
`M2M_BENCH_BACKEND=cuda m2m-bench`); the `.item()` that ends each timing waits for it.
"""

import copy
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# M2m's CIFAR settings (m2m_core::translation::TranslationConfig::default()).
BETA, LAMBDA, GAMMA, STEP_SIZE, STEPS, START_RADIUS = 0.999, 0.5, 0.9, 0.1, 10, 0.5


# --------------------------------------------------------------------------- models


def conv3x3(cin, cout, stride):
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
    # He fan-out: N(0, sqrt(2 / (k*k*out))), the M2m code's init (and ours).
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (9 * cout)))
    return conv


def head(features, classes):
    linear = nn.Linear(features, classes)
    nn.init.kaiming_normal_(linear.weight)  # fan-in, gain sqrt 2
    nn.init.zeros_(linear.bias)
    return linear


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv_a, self.bn_a = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv_b, self.bn_b = conv3x3(cout, cout, 1), nn.BatchNorm2d(cout)
        self.extra, self.stride = cout - cin, stride

    def forward(self, x):
        out = F.relu(self.bn_a(self.conv_a(x)))
        out = self.bn_b(self.conv_b(out))
        if self.stride != 1 or self.extra:
            # Option A (M2m's DownsampleA): every other pixel, then zero channels appended.
            x = F.avg_pool2d(x, 1, self.stride)
            x = torch.cat([x, x.new_zeros(x.shape[0], self.extra, *x.shape[2:])], 1)
        return F.relu(out + x)


class ResNet32(nn.Module):
    """3x3 stem, 3 stages of 5 basic blocks (16/32/64), global average pool, linear head."""

    def __init__(self, in_channels, classes):
        super().__init__()
        self.conv_1_3x3, self.bn_1 = conv3x3(in_channels, 16, 1), nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(5):
                blocks.append(BasicBlock(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width
        self.stages = nn.Sequential(*blocks)
        self.linear = head(64, classes)

    def forward(self, x):
        x = self.stages(F.relu(self.bn_1(self.conv_1_3x3(x))))
        return self.linear(x.mean((2, 3)))


class SmallCnn(nn.Module):
    """Three 3x3 convs (32/64/128, stride 2 after the first), BN, ReLU, GAP, linear head."""

    def __init__(self, in_channels, classes):
        super().__init__()
        widths, cin, layers = [32, 64, 128], in_channels, []
        for i, w in enumerate(widths):
            layers += [conv3x3(cin, w, 1 if i == 0 else 2), nn.BatchNorm2d(w), nn.ReLU()]
            cin = w
        self.features = nn.Sequential(*layers)
        self.linear = head(cin, classes)

    def forward(self, x):
        return self.linear(self.features(x).mean((2, 3)))


class Net(nn.Module):
    """Normalisation inside the model, as M2m's `InputNormalize` (and our `Net`)."""

    def __init__(self, backbone, channels):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.full((1, channels, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, channels, 1, 1), 0.25))

    def forward(self, x):
        # The reference clamps to [0, 1] first; our Rust Net leaves that identity out.
        return self.backbone((x.clamp(0, 1) - self.mean) / self.std)


# ---------------------------------------------------------------------- M2m step


def class_counts(n_max=6000, classes=10, ratio=100.0):
    """m2m_core::imbalance::class_counts(.., Exponential): floor(N_max * (1/rho)^(k/(C-1)))."""
    return [math.floor(n_max * (1.0 / ratio) ** (k / (classes - 1))) for k in range(classes)]


def plan_slots(labels, counts):
    """Steps A and B of the reference (`train_gen_epoch` + the top of `train_net`).

    A slot of class k is regenerated with probability 1 - N_k/N_max; its seed is drawn from
    the batch with weights 1 - beta^max(N_k0 - N_k, 0); rows with no larger class are
    dropped. Same distribution as `plan_slots` in m2m-core (another random stream).
    """
    n = counts[labels]
    gen_idx = (1 - torch.bernoulli(n / counts.max())).nonzero().view(-1)
    gen_targets = labels[gen_idx]
    delta = F.relu(n.view(1, -1) - counts[gen_targets].view(-1, 1))
    p_accept = 1 - BETA**delta
    valid = p_accept.sum(1) > 0
    gen_idx, gen_targets, p_accept = gen_idx[valid], gen_targets[valid], p_accept[valid]
    if gen_idx.numel() == 0:
        return None
    seeds = torch.multinomial(p_accept, 1, replacement=True).view(-1)
    p_accept = p_accept.gather(1, seeds.view(-1, 1)).view(-1)
    return gen_idx, gen_targets, seeds, p_accept


def translate(f, g, x0, targets, seed_classes):
    """Step C, the reference's `generation()`: T normalised descent steps on
    CE(g(x), k) + lambda * mean f(x)[k0] w.r.t. the input only, both nets in eval mode."""
    f.eval()  # g stays in eval mode for the whole run
    # Random start: U(-1/2, 1/2) renormalised per *channel* over the generation batch.
    noise = (torch.rand_like(x0) - 0.5).renorm(p=2, dim=1, maxnorm=START_RADIUS)
    x = (x0 + noise).clamp(0, 1)
    for _ in range(STEPS):
        x = x.detach().requires_grad_(True)
        seed_logit = f(x).gather(1, seed_classes.view(-1, 1)).mean()
        loss = F.cross_entropy(g(x), targets) + LAMBDA * seed_logit
        (grad,) = torch.autograd.grad(loss, [x])  # no parameter gradients are computed
        norm = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        x = (x - STEP_SIZE * grad / (norm + 1e-10)).clamp(0, 1)
    x = x.detach()
    with torch.no_grad():
        q = torch.softmax(g(x), 1).gather(1, targets.view(-1, 1)).view(-1)
    f.train()
    return x, q


def translate_batch(f, g, images, labels, counts):
    """Steps A-D up to the training forward: returns the mixed batch and the number of
    translated (planned, valid) rows, `generation.planned.len()` in the Rust binary."""
    plan = plan_slots(labels, counts)
    if plan is None:
        return images, 0
    gen_idx, gen_targets, seeds, p_accept = plan
    x, q = translate(f, g, images[seeds].detach(), gen_targets, labels[seeds])
    accepted = (q >= GAMMA) & torch.bernoulli(p_accept).bool()
    mixed = images.clone()
    mixed[gen_idx[accepted]] = x[accepted]  # labels stay: a slot keeps its target class
    return mixed, gen_idx.numel()


# --------------------------------------------------------------------------- bench


def median_seconds(fn, iterations):
    """Median seconds of `iterations` calls of `fn` after one warm-up call (v[len/2] of
    the sorted times, as in Rust); `fn` reads a result back, so its work is done."""
    times = []
    for i in range(iterations + 1):
        t = time.perf_counter()
        fn()
        if i > 0:  # iteration 0 is warm-up
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def set_threads():
    env_threads = os.environ.get("M2M_BENCH_THREADS") or os.environ.get("RAYON_NUM_THREADS")
    if env_threads:
        torch.set_num_threads(int(env_threads))
    return env_threads


def conv_kernels(batch, size, iterations):
    """The twin of `m2m-bench conv`: same layers, the three kernels, milliseconds."""
    env_threads = set_threads()
    torch.manual_seed(0)
    layers = [("stage 1", 16, size, 10), ("stage 2", 32, (size + 1) // 2, 9), ("stage 3", 64, (size + 3) // 4, 9)]

    def timed(kernel):
        return median_seconds(lambda: kernel()[0, 0, 0, 0].item(), iterations)

    def backward(g, x, w, which):
        mask = [which == "input", which == "weight", False]
        out = torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
        return out[0] if which == "input" else out[1]

    threads = env_threads or "default"
    print(
        f"PyTorch {torch.__version__} conv kernels, batch {batch}, ResNet-32 stride-1 3x3 layers for {size}x{size} "
        f"inputs, threads {threads} ({torch.get_num_threads()} intra-op), medians of {iterations} (ms)"
    )
    print("| layer | shape | per step | forward | input grad | weight grad |")
    print("|---|---|---|---|---|---|")
    totals, flops = [0.0] * 3, 0.0
    with torch.no_grad():
        for name, c, s, per_step in layers:
            flops += per_step * 2 * batch * c * c * 9 * s * s
            x = torch.randn(batch, c, s, s)
            w = torch.randn(c, c, 3, 3) * 0.1
            g = torch.randn(batch, c, s, s)
            times = [
                timed(lambda: F.conv2d(x, w, padding=1)),
                timed(lambda: backward(g, x, w, "input")),
                timed(lambda: backward(g, x, w, "weight")),
            ]
            cells = " | ".join(f"{t * 1e3:.1f}" for t in times)
            print(f"| {name} | {c}x{s}x{s} | {per_step} | {cells} |")
            totals = [total + t * per_step for total, t in zip(totals, times)]
    print("| all 28 layers, one training step | | | " + " | ".join(f"{t * 1e3:.0f}" for t in totals) + " |")
    print("| GFLOP/s | | | " + " | ".join(f"{flops / t / 1e9:.1f}" for t in totals) + " |")


def batchnorm(batch, size, iterations):
    """The twin of `m2m-bench batchnorm`: ResNet-32's BatchNorm layers in training mode,
    forward and backward of sum(y * g), milliseconds."""
    env_threads = set_threads()
    torch.manual_seed(0)
    layers = [("stem + stage 1", 16, size, 11), ("stage 2", 32, (size + 1) // 2, 10), ("stage 3", 64, (size + 3) // 4, 10)]

    def timed(fn):
        return median_seconds(fn, iterations)

    threads = env_threads or "default"
    print(
        f"PyTorch {torch.__version__} BatchNorm2d (train mode) forward + backward of sum(y * g), batch {batch}, "
        f"ResNet-32 layers for {size}x{size} inputs, threads {threads}, medians of {iterations} (ms)"
    )
    print("| layers | shape | per step | forward | forward + backward |")
    print("|---|---|---|---|---|")
    totals = [0.0, 0.0]
    for name, c, s, per_step in layers:
        bn = nn.BatchNorm2d(c).train()
        x = torch.randn(batch, c, s, s) * 2.0 + 0.5
        g = torch.randn(batch, c, s, s)

        def forward():
            return bn(x.requires_grad_(True))[0, 0, 0, 0].item()

        def both():
            xg = x.detach().requires_grad_(True)
            (bn(xg) * g).sum().backward()
            return xg.grad[0, 0, 0, 0].item()

        times = [timed(forward), timed(both)]
        print(f"| {name} | {c}x{s}x{s} | {per_step} | {times[0] * 1e3:.1f} | {times[1] * 1e3:.1f} |")
        totals = [total + t * per_step for total, t in zip(totals, times)]
    print(f"| all 31 layers, one training step | | | {totals[0] * 1e3:.0f} | {totals[1] * 1e3:.0f} |")


def main():
    args = sys.argv[1:]
    if args and args[0] == "batchnorm":
        num = lambda i, d: int(args[i]) if len(args) > i else d  # noqa: E731
        return batchnorm(num(1, 128), num(2, 28), num(3, 5))
    if args and args[0] == "conv":
        num = lambda i, d: int(args[i]) if len(args) > i else d  # noqa: E731
        return conv_kernels(num(1, 128), num(2, 28), num(3, 5))
    arch = args[0] if args else "resnet32"
    if arch not in ("resnet32", "small-cnn"):
        sys.exit(f"unknown model {arch}: resnet32 or small-cnn")
    num = lambda i, d: int(args[i]) if len(args) > i else d  # noqa: E731
    batch, channels, size, iterations = num(1, 128), num(2, 1), num(3, 28), num(4, 5)
    if iterations < 1:
        sys.exit("iterations must be >= 1")
    env_threads = set_threads()
    print(
        f"pytorch: torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"mkldnn {torch.backends.mkldnn.is_available()}"
    )

    device = torch.device(os.environ.get("M2M_BENCH_DEVICE") or "cpu")
    if device.type == "cuda":
        print(f"pytorch: device {torch.cuda.get_device_name(device)}")
    torch.manual_seed(0)
    backbone = ResNet32(channels, 10) if arch == "resnet32" else SmallCnn(channels, 10)
    model = Net(backbone, channels).train().to(device)
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0.0)
    x = torch.rand(batch, channels, size, size, device=device)
    y = torch.arange(batch, device=device) % 10

    def train_step(images, labels):
        loss = F.cross_entropy(model(images), labels)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss.item()

    def timed(fn):
        return median_seconds(fn, iterations)

    tr = timed(lambda: train_step(x, y))

    # M2m: g is a frozen deep copy of f taken now (its own BN statistics, eval mode).
    counts = torch.tensor(class_counts(), dtype=torch.float32, device=device)
    g = copy.deepcopy(model).eval().requires_grad_(False)
    translated = []

    def m2m_step():
        images, rows = translate_batch(model, g, x, y, counts)
        train_step(images, y)
        translated.append(rows)

    mm = timed(m2m_step)
    translated = sum(translated[1:]) / iterations  # warm-up excluded, as in Rust

    model.eval()

    def eval_step():
        with torch.no_grad():
            model(x).sum().item()

    ev = timed(eval_step)

    name = {"resnet32": "ResNet32", "small-cnn": "SmallCnn"}[arch]
    threads = env_threads or "default"  # as the Rust line prints RAYON_NUM_THREADS
    print(
        f"pytorch {name} batch {batch} input {channels}x{size}x{size} threads {threads}: "
        f"train step {tr:.3f} s ({batch / tr:.1f} img/s), "
        f"eval forward {ev:.3f} s ({batch / ev:.1f} img/s)"
    )
    print(
        f"pytorch {name} batch {batch}: M2m iteration {mm:.3f} s "
        f"({translated:.1f} translated images per batch, {STEPS} steps) = {mm / tr:.1f}x the training step"
    )


if __name__ == "__main__":
    main()
