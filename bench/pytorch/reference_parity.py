#!/usr/bin/env python3
"""Parity check of our M2m against the authors' PyTorch networks, on 20 CIFAR-10 test images.

What it compares
  * The logits of the authors' two ERM ResNet-32 checkpoints for CIFAR-10-LT (rho 100):
    g (the pre-trained generator network) and f (the network being trained, epoch 159),
    on the 20 CIFAR-10 test PNGs `cifar10_NN_L.png` (NN = test index, L = label).
  * The M2m translation (generation step) of every image toward every other class
    (20 x 9 = 180 rows, ordered by image then target ascending), seed class = the
    image's label, no random start, all 180 rows in one batch: g's softmax on the target
    before and after, the L2 distance ||x* - x0||_2 and the gamma test g_prob >= gamma
    (no Bernoulli draw).
  Our numbers come from two JSON files written by our Rust tool (`--ours DIR`):
    DIR/logits.json        [{"image", "label", "g_logits": [10], "f_logits": [10]}, ...]
    DIR/translations.json  [{"image", "seed_class", "target", "g_target_prob_before",
                             "g_target_prob", "l2", "accepted", ...}, ...]
  Rows are matched by (image, target). The summary (printed, and written to `--out`)
  gives the max abs differences of the logits, argmax agreement, mean / max |diff| of
  the per-row numbers, accepted-flag agreement, per-target acceptance rates and mean
  L2 for both sides, and the reference's own numbers, so that it stands alone.

The generation step is written here in our own words from the paper (Kim et al.,
CVPR 2020, "M2m: Imbalanced Classification via Major-to-minor Translation") and the
reference code's behaviour: inputs are clamped to [0, 1] and normalised with the
CIFAR-10 mean/std outside the network; both networks in eval mode; loss =
CE_mean(g(x), target) + lam * mean_r f(x)[r, seed_r]; each step
x <- clamp(x - step_size * grad / (||grad||_2 per sample + 1e-10), 0, 1).
Only the network definition (`models/resnet32.py`) is imported from the authors'
code at run time; their code and checkpoints are fetched separately and are kept
outside this repository (they carry no licence). CPU only, float32, deterministic.

Run (with the bench venv, see setup.sh / requirements.txt):
    python bench/pytorch/reference_parity.py \
        --reference /path/to/M2m --g /path/to/M2m/checkpoint/erm_r100_c10_trial1.t7 \
        --f /path/to/M2m/checkpoint/ckpt_erm_epoch159_919.t7 \
        --images /path/to/foolbox/foolbox/data --ours DIR --out summary.json
    # reference numbers only, in the same JSON shapes as ours ("logits", "translations"):
    python bench/pytorch/reference_parity.py ... --reference-only --out reference.json
Exit status: 0 on success, 2 when our JSON files are missing or unreadable.
"""

import argparse
import contextlib
import glob
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
NUM_CLASSES = 10
GRAD_NORM_EPS = 1e-10


# --------------------------------------------------------------------------- inputs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", required=True, help="fetched M2m code (has models/resnet32.py)")
    p.add_argument("--g", required=True, help="checkpoint of g (dict with key 'net')")
    p.add_argument("--f", required=True, help="checkpoint of f (dict with key 'net')")
    p.add_argument("--images", required=True, help="folder with cifar10_NN_L.png")
    p.add_argument("--ours", help="folder with our logits.json and translations.json")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--reference-only", action="store_true",
                   help="skip the comparison; write the reference numbers in our JSON shapes")
    p.add_argument("--lam", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-size", type=float, default=0.1)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--torch-clamp", action="store_true",
                   help="the input clamp with torch's own gradient (0 at the bounds) instead of 1")
    args = p.parse_args(argv)
    if not args.reference_only and not args.ours:
        p.error("--ours DIR is required unless --reference-only is given")
    return args


def label_from_name(name):
    """`cifar10_07_6.png` -> 6 (the number after the last underscore)."""
    stem = os.path.splitext(name)[0]
    return int(stem.rsplit("_", 1)[1])


def load_images(folder):
    """The cifar10_*.png files sorted by name: (names, labels, float32 NCHW in [0, 1])."""
    from PIL import Image

    paths = sorted(glob.glob(os.path.join(folder, "cifar10_*.png")))
    if not paths:
        raise SystemExit(f"no cifar10_*.png images in {folder}")
    names, labels, arrays = [], [], []
    for path in paths:
        name = os.path.basename(path)
        with Image.open(path) as im:
            hwc = np.asarray(im.convert("RGB"), dtype=np.uint8)
        names.append(name)
        labels.append(label_from_name(name))
        arrays.append(hwc.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0))
    # Plain contiguous NCHW (the transpose alone would leave a channels-last layout).
    return names, labels, torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))


def load_net(reference_dir, checkpoint):
    """The authors' ResNet-32 with the weights of `checkpoint`, in eval mode."""
    if reference_dir not in sys.path:
        sys.path.insert(0, reference_dir)
    from models.resnet32 import resnet32

    with contextlib.redirect_stdout(sys.stderr):  # the constructor prints its depth
        net = resnet32(NUM_CLASSES)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["net"]
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    net.load_state_dict(state)
    net.float().eval()
    for param in net.parameters():
        param.requires_grad_(False)
    return net


# --------------------------------------------------------------------------- reference


def normalise(x, torch_clamp=False):
    """Clamp to [0, 1], then per-channel (x - mean) / std.

    The clamp's gradient at the bounds: torch 2.x gives 0 for a pixel exactly at 0 or 1
    (checked with torch 2.15), which stops saturated pixels from moving. Our network has
    no clamp (its inputs are always in [0, 1]), so the gradient there is 1. By default
    the clamp here is straight-through (same values, gradient 1) to compare like with
    like; `--torch-clamp` uses torch's own clamp and shows what that choice changes."""
    mean = torch.tensor(CIFAR10_MEAN, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(CIFAR10_STD, dtype=x.dtype).view(1, -1, 1, 1)
    clamped = x.clamp(0.0, 1.0) if torch_clamp else x + (x.clamp(0.0, 1.0) - x).detach()
    return (clamped - mean) / std


def logits_of(net, x):
    with torch.no_grad():
        return net(normalise(x))[0]


def target_prob(net, x, targets):
    """net's softmax probability of `targets`, one per row."""
    probs = torch.softmax(logits_of(net, x), dim=1)
    return probs.gather(1, targets.view(-1, 1)).view(-1)


def translate(g, f, x0, seeds, targets, lam, steps, step_size, torch_clamp=False):
    """M2m generation without random start: `steps` normalised-gradient L2 steps on
    CE_mean(g(x), target) + lam * mean_r f(x)[r, seed_r], clamped to [0, 1].

    The iteration is sensitive to rounding: a 1-ulp change in the first step grows to
    ~1e-3 per pixel after 10 steps (ReLU and clamp switches), so expect parity with a
    different implementation to be close, not exact, for the translation rows."""
    x = x0.clone()
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        out_g = g(normalise(x, torch_clamp))[0]
        out_f = f(normalise(x, torch_clamp))[0]
        seed_logit = out_f.gather(1, seeds.view(-1, 1)).view(-1)
        loss = F.cross_entropy(out_g, targets) + lam * seed_logit.mean()
        (grad,) = torch.autograd.grad(loss, [x])
        norm = grad.flatten(1).norm(p=2, dim=1).view(-1, 1, 1, 1)
        # Unit direction first, then the step size: the reference's rounding order (the
        # iteration amplifies 1-ulp differences, see the note in translate's docstring).
        x = (x - step_size * (grad / (norm + GRAD_NORM_EPS))).clamp(0.0, 1.0)
    return x.detach()


def translation_plan(labels):
    """(image index, target) for every image toward every other class, image-major."""
    return [(i, t) for i, label in enumerate(labels) for t in range(NUM_CLASSES) if t != label]


def reference_logits(names, labels, images, g, f):
    lg, lf = logits_of(g, images), logits_of(f, images)
    return [
        {"image": n, "label": y, "g_logits": lg[i].tolist(), "f_logits": lf[i].tolist()}
        for i, (n, y) in enumerate(zip(names, labels))
    ]


def reference_translations(names, labels, images, g, f, args):
    plan = translation_plan(labels)
    idx = torch.tensor([i for i, _ in plan])
    targets = torch.tensor([t for _, t in plan])
    seeds = torch.tensor([labels[i] for i, _ in plan])
    x0 = images[idx]
    before = target_prob(g, x0, targets)
    x = translate(g, f, x0, seeds, targets, args.lam, args.steps, args.step_size, args.torch_clamp)
    after = target_prob(g, x, targets)
    l2 = (x - x0).flatten(1).norm(p=2, dim=1)
    rows = []
    for r, (i, t) in enumerate(plan):
        rows.append({
            "image": names[i],
            "seed_class": labels[i],
            "target": t,
            "g_target_prob_before": before[r].item(),
            "g_target_prob": after[r].item(),
            "l2": l2[r].item(),
            "accepted": bool(after[r].item() >= args.gamma),
        })
    return rows


# --------------------------------------------------------------------------- summaries


def argmax(values):
    return int(np.argmax(np.asarray(values)))


def logit_summary(logit_rows):
    n = len(logit_rows)
    return {
        "images": n,
        "g_correct": sum(argmax(r["g_logits"]) == r["label"] for r in logit_rows),
        "f_correct": sum(argmax(r["f_logits"]) == r["label"] for r in logit_rows),
    }


def per_target_rate(rows, accepted):
    """Acceptance rate per target class (as string keys), from accepted(row) -> bool."""
    rates = {}
    for t in range(NUM_CLASSES):
        sel = [r for r in rows if r["target"] == t]
        if sel:
            rates[str(t)] = sum(bool(accepted(r)) for r in sel) / len(sel)
    return rates


def translation_summary(rows, gamma):
    def mean(key):
        return float(np.mean([r[key] for r in rows])) if rows else float("nan")

    gamma_test = lambda r: r["g_target_prob"] >= gamma  # noqa: E731
    return {
        "rows": len(rows),
        "mean_g_target_prob_before": mean("g_target_prob_before"),
        "mean_g_target_prob": mean("g_target_prob"),
        "mean_l2": mean("l2"),
        "acceptance_rate_gamma": (sum(gamma_test(r) for r in rows) / len(rows)) if rows else float("nan"),
        "acceptance_rate_accepted_flag": (sum(bool(r["accepted"]) for r in rows) / len(rows)) if rows else float("nan"),
        "acceptance_per_target_gamma": per_target_rate(rows, gamma_test),
        "acceptance_per_target_accepted_flag": per_target_rate(rows, lambda r: r["accepted"]),
    }


def abs_diff_stats(pairs, key):
    diffs = [abs(float(a[key]) - float(b[key])) for a, b in pairs]
    if not diffs:
        return {"mean": float("nan"), "max": float("nan")}
    return {"mean": float(np.mean(diffs)), "max": float(np.max(diffs))}


# --------------------------------------------------------------------------- comparison


def load_ours(folder):
    """Our two JSON files, or exit 2 with a message when one is missing or unreadable."""
    loaded = {}
    for key in ("logits", "translations"):
        path = os.path.join(folder, key + ".json")
        if not os.path.isfile(path):
            print(f"reference_parity: missing {path} (run our tool first, or use --reference-only)",
                  file=sys.stderr)
            sys.exit(2)
        try:
            with open(path) as fh:
                loaded[key] = json.load(fh)
        except (OSError, ValueError) as err:
            print(f"reference_parity: cannot read {path}: {err}", file=sys.stderr)
            sys.exit(2)
        if not isinstance(loaded[key], list):
            print(f"reference_parity: {path} is not a JSON array", file=sys.stderr)
            sys.exit(2)
    return loaded["logits"], loaded["translations"]


def compare_logits(ref_rows, our_rows):
    ours = {r["image"]: r for r in our_rows}
    pairs = [(r, ours[r["image"]]) for r in ref_rows if r["image"] in ours]
    out = {"matched": len(pairs), "missing_in_ours": len(ref_rows) - len(pairs),
           "label_mismatches": sum(int(o.get("label", r["label"])) != r["label"] for r, o in pairs)}
    for net in ("g", "f"):
        key = net + "_logits"
        max_diff = max((float(np.max(np.abs(np.asarray(r[key], dtype=np.float64)
                                            - np.asarray(o[key], dtype=np.float64))))
                        for r, o in pairs), default=float("nan"))
        out[net + "_logits_max_abs_diff"] = max_diff
        out[net + "_argmax_agree"] = sum(argmax(r[key]) == argmax(o[key]) for r, o in pairs)
        out[net + "_correct_ours"] = sum(argmax(o[key]) == r["label"] for r, o in pairs)
    return out


def compare_translations(ref_rows, our_rows, gamma):
    ours = {(r["image"], int(r["target"])): r for r in our_rows}
    pairs = [(r, ours[(r["image"], r["target"])]) for r in ref_rows
             if (r["image"], r["target"]) in ours]
    ref_keys = {(r["image"], r["target"]) for r in ref_rows}
    out = {
        "matched": len(pairs),
        "missing_in_ours": len(ref_rows) - len(pairs),
        "extra_in_ours": sum(k not in ref_keys for k in ours),
        "seed_class_mismatches": sum(int(o.get("seed_class", r["seed_class"])) != r["seed_class"]
                                     for r, o in pairs),
        "accepted_agree": sum(bool(r["accepted"]) == bool(o["accepted"]) for r, o in pairs),
    }
    for key in ("g_target_prob_before", "g_target_prob", "l2"):
        out[key + "_abs_diff"] = abs_diff_stats(pairs, key)
    out["ours"] = translation_summary([o for _, o in pairs], gamma)
    return out


# --------------------------------------------------------------------------- report


def print_reference(ref):
    lg, tr = ref["logits"], ref["translations"]
    print(f"reference: g correct {lg['g_correct']}/{lg['images']}, "
          f"f correct {lg['f_correct']}/{lg['images']}")
    print(f"reference: {tr['rows']} translations, mean g_target_prob "
          f"{tr['mean_g_target_prob_before']:.6f} -> {tr['mean_g_target_prob']:.6f}, "
          f"mean L2 {tr['mean_l2']:.6f}, acceptance (gamma) {tr['acceptance_rate_gamma']:.4f}")
    per = tr["acceptance_per_target_gamma"]
    print("reference: acceptance per target " + " ".join(f"{t}:{per[t]:.3f}" for t in sorted(per, key=int)))


def print_comparison(cmp_logits, cmp_tr, n_images):
    print(f"logits: g max|diff| {cmp_logits['g_logits_max_abs_diff']:.3e}, "
          f"f max|diff| {cmp_logits['f_logits_max_abs_diff']:.3e}, argmax agree "
          f"g {cmp_logits['g_argmax_agree']}/{n_images}, f {cmp_logits['f_argmax_agree']}/{n_images}"
          + (f", {cmp_logits['missing_in_ours']} images missing in ours"
             if cmp_logits["missing_in_ours"] else ""))
    for key in ("g_target_prob_before", "g_target_prob", "l2"):
        s = cmp_tr[key + "_abs_diff"]
        print(f"translations: {key} |diff| mean {s['mean']:.3e} max {s['max']:.3e}")
    print(f"translations: accepted agree {cmp_tr['accepted_agree']}/{cmp_tr['matched']}"
          f" (missing in ours {cmp_tr['missing_in_ours']}, extra {cmp_tr['extra_in_ours']},"
          f" seed mismatches {cmp_tr['seed_class_mismatches']})")
    ours = cmp_tr["ours"]
    print(f"ours: mean g_target_prob {ours['mean_g_target_prob_before']:.6f} -> "
          f"{ours['mean_g_target_prob']:.6f}, mean L2 {ours['mean_l2']:.6f}, "
          f"acceptance (gamma) {ours['acceptance_rate_gamma']:.4f}, "
          f"(accepted flag) {ours['acceptance_rate_accepted_flag']:.4f}")
    per = ours["acceptance_per_target_gamma"]
    print("ours: acceptance per target " + " ".join(f"{t}:{per[t]:.3f}" for t in sorted(per, key=int)))


def write_json(path, obj):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as err:  # noqa: BLE001  (not fatal: CPU kernels are deterministic anyway)
        print(f"reference_parity: deterministic algorithms unavailable: {err}", file=sys.stderr)

    # Fail early, before the slow part, when our files are missing.
    ours = None if args.reference_only else load_ours(args.ours)

    names, labels, images = load_images(args.images)
    g = load_net(args.reference, args.g)
    f = load_net(args.reference, args.f)
    logit_rows = reference_logits(names, labels, images, g, f)
    translation_rows = reference_translations(names, labels, images, g, f, args)

    settings = {"lam": args.lam, "steps": args.steps, "step_size": args.step_size, "torch_clamp": args.torch_clamp,
                "gamma": args.gamma, "random_start": False, "batch": len(translation_rows),
                "torch": torch.__version__, "threads": torch.get_num_threads()}
    reference = {"logits": logit_summary(logit_rows),
                 "translations": translation_summary(translation_rows, args.gamma)}
    print_reference(reference)

    if args.reference_only:
        result = {"settings": settings, "reference": reference,
                  "logits": logit_rows, "translations": translation_rows}
    else:
        our_logits, our_translations = ours
        cmp_logits = compare_logits(logit_rows, our_logits)
        cmp_tr = compare_translations(translation_rows, our_translations, args.gamma)
        print_comparison(cmp_logits, cmp_tr, len(names))
        result = {"settings": settings, "reference": reference,
                  "logits_comparison": cmp_logits, "translations_comparison": cmp_tr,
                  "reference_rows": {"logits": logit_rows, "translations": translation_rows}}

    result["seconds"] = time.perf_counter() - started
    write_json(args.out, result)
    print(f"wrote {args.out} ({result['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
