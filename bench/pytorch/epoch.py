#!/usr/bin/env python3
"""PyTorch twin of one `m2m train` epoch: ResNet-32 ERM (or M2m) on Fashion-MNIST-LT rho 100.

    python bench/pytorch/epoch.py [n_max] [epochs] [erm|m2m]

The same epoch as
    m2m train recipes/erm-fmnist-lt100-resnet32.ron --no-dashboard \\
        --set schedule.epochs=1 --set schedule.warmup_epochs=0 --set 'schedule.milestones=[]' \\
        --set dataset.max_per_class=N_MAX
(defaults: n_max 5000, 1 epoch): the first N_k training images of each class in file
order, N_k = floor(n_max * (1/100)^(k/9)); crop with zero padding 4 and horizontal flips
on a loader thread (as `m2m train` assembles batches on a prefetch thread); batch 128,
SGD lr 0.1, momentum 0.9, weight decay 2e-4; then evaluation (batch 500) of the 1,000
validation and 9,000 test images. Prints the seconds of training, evaluation and the
whole epoch, each epoch's own line, so both programs' epochs can be compared.

With `m2m`: first the ERM epochs as above (their model becomes g, as `m2m.g:
Checkpoint(ERM run)` in the recipe), then as many M2m epochs from a fresh f: batches from a
class-balanced sampler (weights 1/N_k, as many draws as images), each batch translated as
m2m_bench.py's `translate_batch` (the reference's `train_net` + `generation`: 10 steps,
beta 0.999, lambda 0.5, gamma 0.9), then the training step. The twin of
    m2m train recipes/m2m-fmnist-lt100-resnet32.ron --no-dashboard \
        --set schedule.epochs=1 --set schedule.warmup_epochs=0 --set 'schedule.milestones=[]' \
        --set dataset.max_per_class=N_MAX --set m2m.from_epoch=0 --set 'm2m.g=Checkpoint("ERM_RUN")'
Data: $M2M_DATA, else /usr/share/datasets/fashion-mnist (IDX files, gzip).
Threads and device as m2m_bench.py (M2M_BENCH_THREADS / RAYON_NUM_THREADS,
M2M_BENCH_DEVICE).
"""

import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from m2m_bench import Net, ResNet32, class_counts, set_threads, translate_batch  # noqa: E402


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class LongTail(torch.utils.data.Dataset):
    def __init__(self, images, labels, augment):
        self.images, self.labels, self.augment = images, labels, augment

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0)
        if self.augment:
            dy, dx = np.random.randint(-4, 5, size=2)
            x = F.pad(x, (4, 4, 4, 4))[:, 4 + dy : 32 + dy, 4 + dx : 32 + dx]
            if np.random.rand() < 0.5:
                x = x.flip(2)
        return x, int(self.labels[i])


def run_epochs(label, model, loader, evals, epochs, device, step=None):
    """Train `model` for `epochs` epochs of `loader` (`step(x, y)` may replace the batch,
    M2m's translation), each followed by evaluation; prints one line per epoch."""
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        loss_sum, seen = torch.zeros((), device=device), 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if step is not None:
                x = step(x, y)
            loss = F.cross_entropy(model(x), y)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            loss_sum += loss.detach() * len(y)
            seen += len(y)
        train_loss = loss_sum.item() / seen
        trained = time.perf_counter()
        model.eval()
        correct = []
        with torch.no_grad():
            for images, labels in evals:
                hits = 0
                for i in range(0, len(labels), 500):
                    x = torch.from_numpy(images[i : i + 500].astype(np.float32) / 255.0).unsqueeze(1).to(device)
                    hits += (model(x).argmax(1).cpu().numpy() == labels[i : i + 500]).sum()
                correct.append(hits / len(labels))
        done = time.perf_counter()
        print(
            f"pytorch {label} epoch {epoch}: train {trained - start:.1f} s ({seen} images, loss {train_loss:.4f}), "
            f"eval {done - trained:.1f} s (val acc {correct[0]:.4f}, test acc {correct[1]:.4f}), epoch {done - start:.1f} s",
            flush=True,
        )


def main():
    args = sys.argv[1:]
    n_max = int(args[0]) if args else 5000
    epochs = int(args[1]) if len(args) > 1 else 1
    method = args[2] if len(args) > 2 else "erm"
    if method not in ("erm", "m2m"):
        sys.exit(f"epoch.py: method must be erm or m2m, not {method!r}")
    set_threads()
    device = torch.device(os.environ.get("M2M_BENCH_DEVICE") or "cpu")
    root = os.environ.get("M2M_DATA") or "/usr/share/datasets/fashion-mnist"
    train_x, train_y = idx(f"{root}/train-images-idx3-ubyte.gz"), idx(f"{root}/train-labels-idx1-ubyte.gz")
    test_x, test_y = idx(f"{root}/t10k-images-idx3-ubyte.gz"), idx(f"{root}/t10k-labels-idx1-ubyte.gz")
    counts = class_counts(n_max)
    keep = np.concatenate([np.flatnonzero(train_y == k)[:n] for k, n in enumerate(counts)])
    train = LongTail(train_x[keep], train_y[keep], augment=True)
    loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True, num_workers=1, persistent_workers=True)
    evals = [(test_x[:1000], test_y[:1000]), (test_x[1000:], test_y[1000:])]
    print(f"pytorch epoch: torch {torch.__version__}, {torch.get_num_threads()} threads, {len(train)} training images, {sum(counts)} = {counts}")

    torch.manual_seed(0)
    model = Net(ResNet32(1, 10), 1).to(device)
    run_epochs("erm", model, loader, evals, epochs, device)
    if method == "m2m":
        g = model.eval()
        for p in g.parameters():
            p.requires_grad_(False)
        f = Net(ResNet32(1, 10), 1).to(device)
        weights = torch.tensor([1.0 / counts[y] for y in train.labels], dtype=torch.double)
        sampler = torch.utils.data.WeightedRandomSampler(weights, len(train), replacement=True)
        balanced = torch.utils.data.DataLoader(
            train, batch_size=128, sampler=sampler, num_workers=1, persistent_workers=True
        )
        n = torch.tensor(counts, dtype=torch.float, device=device)

        def step(x, y):
            mixed, _ = translate_batch(f, g, x, y, n)
            return mixed

        run_epochs("m2m", f, balanced, evals, epochs, device, step)


if __name__ == "__main__":
    main()
