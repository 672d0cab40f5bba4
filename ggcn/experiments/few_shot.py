"""Few-sample training (the paper's Sec. 5.5, Fig. 10) and inpainting (Fig. 11, Table III): chapter 7's runs.

Fig. 10 trains wFRAME, wGCN, GGCN and DCGAN on a handful of images, duplicated until the training
set has the size DCGAN is used to; :func:`ggcn.measure.scores.copy_scores` tells learning from copying.
Table III trains GGCN+AMS to complete masked faces and compares it with two fills that learn nothing.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ggcn.config import Profile
from ggcn.experiments.runs import LABELS, fit, shown, shows_chains
from ggcn.experiments.verdicts import CHEAP_SEEDS, HIGHER_IS_BETTER, combine, describe, difference, judge, record
from ggcn.measure import data
from ggcn.measure.datasets import to_uint8
from ggcn.measure.proxy import fit_proxy
from ggcn.measure.scores import completion_scores, copy_scores, reference_scores
from ggcn.models import inpainting, masks

FEW_SHOT_MODELS = ("wframe", "wgcn", "ggcn", "dcgan")  # the paper's Fig. 10
ENERGY_MODELS = ("wframe", "wgcn", "ggcn")
FEW_SHOT_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # scikit-image photos; SUN397 needs a data root
METHODS = {"ggcn+ams": "GGCN+AMS", "mean": "mean-face fill", "diffusion": "diffusion fill"}
FILLS = ("mean", "diffusion")


def duplicate(images: Tensor, total: int) -> Tensor:
    """The k images repeated (in order) to ``total`` rows, as the paper duplicates its few images."""
    if images.dim() != 4 or len(images) < 1:
        raise ValueError(f"need a batch of images (k, C, H, W), got shape {tuple(images.shape)}")
    if total < len(images):
        raise ValueError(f"total ({total}) must be at least the number of images ({len(images)})")
    return images[torch.arange(total) % len(images)]


def train_few_shot(name: str, train_set: Tensor, profile: Profile, seed: int, *, n_samples: int | None = None,
                   **kwargs: Any) -> tuple[Any, Tensor]:
    """:func:`ggcn.experiments.runs.fit` on ``train_set``, then (model, what it shows): the chains X~ of a
    FRAME/GCN model, fresh draws otherwise; ``n_samples`` defaults to the batch size (the chains)."""
    n = n_samples or profile.batch_size
    model = fit(name, train_set, profile, seed, **kwargs).model
    if shows_chains(model) and n > len(model.particles):
        raise ValueError(f"{name} has {len(model.particles)} persistent chains; ask for at most that many samples")
    return model, shown(model, n).detach()


def chapter_settings(profile: Profile, data_root: str | Path | None = None) -> dict[str, Any]:
    """The chapter's settings at a profile. Every model takes the recipe of natural photographs, "faces";
    LFW crops are 25 px wide, so inpainting runs at 16 px (32 px at paper) on them; an iteration without
    Langevin steps is cheap, so the inpainter trains ``inpaint_factor`` × the profile's iterations."""
    faces, factor = "lfw" if data_root is None else "celeba", 8
    return {"family": "faces", "few_size": profile.image_size // 2, "k": len(FEW_SHOT_PHOTOS), "faces": faces,
            "n_test": 20 if faces == "lfw" else 1000, "inpaint_factor": factor,
            "inpaint_size": max(16, profile.image_size // 2) if faces == "lfw" else profile.image_size,
            "inpaint_iterations": factor * profile.iterations, "proxy_iterations": min(300, 10 * profile.iterations),
            "n_show": 6, "data_root": None if data_root is None else str(data_root)}


def _judge(metrics: dict[str, Any], s: dict[str, Any], seeds: list[int], profile: Profile) -> None:
    """Verdicts on the paper's two claims from the per-seed numbers (:func:`ggcn.experiments.verdicts.judge`)."""
    runs = metrics["few_shot"]
    per_model = {key: {n: judge(runs[n][key], runs["dcgan"][key]) for n in ENERGY_MODELS}
                 for key in ("set_distance", "proxy_fid")}
    record(metrics, "few-sample", combine(per_model["set_distance"].values()),
           f"set distance (RMS) to the {s['k']} training images, {len(seeds)} seeds: "
           + ", ".join(f"{LABELS[n]} {describe(runs[n]['set_distance'])}" for n in FEW_SHOT_MODELS) + "; vs DCGAN: "
           + "; ".join(f"{LABELS[n]} {difference(runs[n]['set_distance'], runs['dcgan']['set_distance']).text()}"
                       for n in ENERGY_MODELS),
           per_model=per_model["set_distance"], per_model_proxy_fid=per_model["proxy_fid"],
           profile=profile.name, seeds=seeds)
    scores, per_mask, said = metrics["inpainting"], {}, {kind: [] for kind in masks.MASKS}
    for kind in masks.MASKS:
        for key, unit in (("ssim", ""), ("psnr", " dB")):
            best = max(FILLS, key=lambda b: np.mean(scores[kind][b][key]))
            ours, theirs = scores[kind]["ggcn+ams"][key], scores[kind][best][key]
            row = per_mask[f"{kind} {key}"] = {"baseline": best, "verdict": judge(ours, theirs, HIGHER_IS_BETTER[key]),
                                               "test": difference(ours, theirs).text()}
            said[kind].append(f"{key.upper()} {describe(ours)}{unit} (vs {best}: {row['test']})")
    record(metrics, "inpainting", combine([v["verdict"] for v in per_mask.values()]),
           f"{s['faces']} at {s['inpaint_size']} px, {metrics['inpaint_split']['test']} held-out faces, "
           f"{len(seeds)} seeds: " + "; ".join(f"{kind} " + ", ".join(said[kind]) for kind in masks.MASKS),
           per_mask=per_mask, profile=profile.name, seeds=seeds)


def few_shot_chapter(profile: Profile, seed: int = 0, *, device: str = "cpu",
                     data_root: str | Path | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every run of chapter 7, as ``(metrics, arrays)`` for :func:`ggcn.book.artifacts.load_or_run`:
    Fig. 10 on :data:`FEW_SHOT_PHOTOS` (or SUN397 under ``data_root``), Table III on LFW (or CelebA), and the
    verdicts on "few-sample" and "inpainting". Every run takes well under a CPU-minute at teach, so there are
    at least :data:`~ggcn.experiments.verdicts.CHEAP_SEEDS` seeds (``metrics["seeds"]``)."""
    seeds = [seed + k for k in range(max(CHEAP_SEEDS, profile.n_seeds))]
    s = chapter_settings(profile, data_root)
    metrics, arrays = {"settings": s, "seeds": seeds}, {}

    def few_shot() -> None:
        photos = torch.cat([data.photo(name, s["few_size"]) for name in FEW_SHOT_PHOTOS]) if s["data_root"] is None \
            else data.load_images("sun", s["data_root"], s["few_size"], n=s["k"], seed=seeds[0])
        train_set = duplicate(photos, profile.n_images)
        proxy = fit_proxy(train_set, iterations=s["proxy_iterations"], batch_size=profile.batch_size, seed=seeds[0])
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in FEW_SHOT_MODELS}
        for seed in seeds:
            for name in FEW_SHOT_MODELS:
                _, samples = train_few_shot(name, train_set, profile, seed, device=device, family=s["family"])
                for key, value in copy_scores(samples.cpu(), photos, proxy).items():
                    runs[name].setdefault(key, []).append(value)
                if seed == seeds[0]:
                    arrays[f"few_{name}"] = to_uint8(samples[:16])
        arrays["few_photos"] = to_uint8(photos)
        metrics.update(few_shot=runs, few_reference=reference_scores(photos), few_training_rows=len(train_set))

    def inpaint() -> None:
        size, n_test, n_show = s["inpaint_size"], s["n_test"], s["n_show"]
        faces = data.lfw_faces(size) if s["faces"] == "lfw" else \
            data.load_images("celeba", s["data_root"], size, n=profile.n_images + n_test, seed=0)
        train_faces, test_faces = masks.split_holdout(faces, n_test, seed=0)
        proxy = fit_proxy(train_faces, iterations=s["proxy_iterations"], batch_size=profile.batch_size, seed=seeds[0])
        mean_face, x = train_faces.mean(0).to(device), test_faces.to(device)
        runs = {kind: {m: {"ssim": [], "psnr": [], "mse": [], "proxy_fid": []} for m in METHODS}
                for kind in masks.MASKS}
        build = partial(inpainting.build_inpainter, "ggcn+ams", profile, train_faces.shape[1], size,
                        n_examples=len(train_faces), family=s["family"], device=device)
        for seed in seeds:
            model = fit(build, train_faces, profile, seed, iterations=s["inpaint_iterations"], on_examples=True,
                        device=device).model
            generator = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)  # the codes z of the completions
            for kind in masks.MASKS:
                mask = masks.make_masks(kind, n_test, size, generator)
                m = mask.to(device)
                completed = {"ggcn+ams": model.complete(x, m).cpu(), "mean": masks.mean_fill(x, m, mean_face).cpu(),
                             "diffusion": masks.diffusion_fill(x, m).cpu()}
                for method, x_hat in completed.items():
                    for key, value in completion_scores(test_faces, x_hat, proxy).items():
                        runs[kind][method][key].append(value)
                if seed == seeds[0]:
                    arrays[f"mask_{kind}"] = mask[:n_show].numpy().astype(np.uint8)
                    arrays.update({f"inpaint_{kind}_{m}": to_uint8(x_hat[:n_show]) for m, x_hat in completed.items()})
        arrays["test_faces"] = to_uint8(test_faces[:n_show])
        metrics.update(inpainting=runs, inpaint_split={"train": len(train_faces), "test": len(test_faces)})

    few_shot()
    inpaint()
    _judge(metrics, s, seeds, profile)
    return metrics, arrays
