"""Do the models learn? Train every image model by its recipe at the teach profile and judge its samples.

    .venv/bin/python benchmarks/sample_quality.py --out DIR [--seed S] [--models m1,m2,...]
                                                  [--datasets digits,faces,texture] [--jobs N]

For each data set -- (a) sklearn's digits, (b) the LFW faces, (c) the brick texture -- the
dataset's ruler (:mod:`ggcn.measure.rulers`) is built and checked first (real > blurred > noise, flat,
mean), then each model is trained on the ruler's training images with its recipe
(:func:`ggcn.config.recipe`) through :func:`ggcn.experiments.runs.fit_recipe`, one thread per model,
and its samples are scored. Written to DIR:

* ``samples.npz``: uint8 (N, C, H, W), 0 = black, 255 = white, keys ``<dataset>__<model>``;
* ``report.json``: every ruler's reference rows and check, and per model its scores, whether it
  passed the ruler's bar, training CPU seconds and CPU seconds to quality (the first check at which
  its samples passed the bar), what its samples are (fresh draws, or for FRAME/GCN-type models the
  chains they learned from, with the score their fresh draws would get), and the extra runs on
  digits (:data:`EXTRAS`: GGCN+AMS with the paper's k = 4, the conditional GGCN+AMS, GGCN with
  fresh codes from a Gaussian fitted to its learned codes);
* ``<dataset>.png``: one labelled grid of samples per data set, with the real images first.

The table printed at the end is the same report. ``--jobs 2`` trains two models at once (CPU
seconds are per process, so they stay comparable; wall time halves on two cores).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ggcn.config import get_profile, recipe  # noqa: E402
from ggcn.measure.datasets import to_uint8  # noqa: E402
from ggcn.experiments.runs import draw, fit_recipe, shown, shows_chains  # noqa: E402
from ggcn.measure.rulers import Ruler, ruler_for  # noqa: E402

MODELS = {
    "digits": ("frame", "wframe", "gcn", "wgcn", "wgcn-data", "wgcn-proximal", "mgcn", "wmgcn",
               "ggcn", "ggcn-lhs", "ggcn+ams", "ggcn-lhs+ams", "dcgan"),
    "faces": ("gcn", "wgcn", "wgcn-data", "wgcn-proximal", "mgcn", "ggcn", "ggcn-lhs", "ggcn+ams", "ggcn-lhs+ams",
              "dcgan"),
    "texture": ("frame", "wframe", "gcn", "wgcn", "wgcn-data", "wgcn-proximal"),
}
N_SAMPLES = {"digits": 300, "faces": 100, "texture": 16}
EXTRAS = ("ggcn+ams@k4", "ggcn+ams|conditional", "ggcn|fitted-codes")  # digits runs beside the recipes
CHECKS = 10  # quality checks per run (time-to-quality resolution: a tenth of the run)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """One model on one data set (runs in a worker process)."""
    torch.set_num_threads(1)
    ruler: Ruler = job["ruler"]
    name, family, seed = job["model"], job["family"], job["seed"]
    profile = get_profile("teach")
    labels = ruler.train_labels if job.get("conditional") else None
    iterations = recipe(name, family).iterations
    started = time.time()
    learned = fit_recipe(name, family, ruler.train_images, profile, seed, labels=labels,
                         judge=lambda x: ruler.learned(ruler.score(x)), eval_every=max(1, iterations // CHECKS),
                         n_eval=N_SAMPLES[family], **job.get("overrides", {}))
    n = N_SAMPLES[family]
    y = None if labels is None else torch.arange(n) % 10
    torch.manual_seed(seed + 1)
    samples = shown(learned.model, n, y)
    scores = ruler.score(samples)
    chains = shows_chains(learned.model)
    out = {
        "model": name, "family": family, "scores": scores, "learned": ruler.learned(scores),
        "train_cpu_s": round(learned.seconds, 1),
        "cpu_s_to_quality": None if learned.seconds_to_quality is None else round(learned.seconds_to_quality, 1),
        "checks": learned.checks, "diverged": learned.diverged, "iterations": iterations,
        "wall_s": round(time.time() - started, 1), "samples": to_uint8(samples),
        "shows": "chains" if chains else "fresh draws",
    }
    if chains:  # what its fresh draws (sample_steps Langevin steps from noise) would score
        out["fresh_scores"] = ruler.score(draw(learned.model, n))
    if y is not None:
        out["label_agreement"] = ruler.label_agreement(samples, y)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for samples.npz, report.json and grids")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="", help="comma-separated model names (default: every model)")
    parser.add_argument("--datasets", default="digits,faces,texture")
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once, one thread each")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one recipe option for every model run (calibration), e.g. --set lr=3e-4")
    args = parser.parse_args()
    overrides = dict(_option(item, parser) for item in args.set)
    families = [f.strip() for f in args.datasets.split(",") if f.strip()]
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    known = {m for f in families for m in MODELS.get(f, ())}
    if unknown := wanted - known - set(EXTRAS):
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {sorted(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    report: dict[str, Any] = {"seed": args.seed, "profile": "teach", "overrides": overrides, "rulers": {},
                              "models": {}, "extras": {}}
    jobs, rulers = [], {}
    for family in families:
        began = time.process_time()
        ruler = rulers[family] = ruler_for(family, seed=args.seed)
        check = ruler.check()
        report["rulers"][family] = {"name": ruler.name, "primary": ruler.primary, "higher_is_better":
                                    ruler.higher_is_better, "references": ruler.references(),
                                    "check_passed": check.passed, "check": check.message,
                                    "build_cpu_s": round(time.process_time() - began, 1)}
        print(f"[{family}] ruler {ruler.name}: {check.message}", flush=True)
        for model in MODELS[family]:
            if not wanted or model in wanted:
                jobs.append({"model": model, "family": family, "seed": args.seed, "ruler": ruler,
                             "overrides": overrides})
    if "digits" in families:  # the paper's generator schedule, conditional generation, fitted LHS codes
        extras = {"ggcn+ams@k4": ("ggcn+ams", {"overrides": {**overrides, "gen_every": 4}}),
                  "ggcn+ams|conditional": ("ggcn+ams", {"conditional": True, "overrides": overrides}),
                  "ggcn|fitted-codes": ("ggcn", {"overrides": {**overrides, "code_sampling": "fitted"}})}
        for key, (model, extra) in extras.items():
            if not wanted or key in wanted:
                jobs.append({"model": model, "family": "digits", "seed": args.seed, "ruler": rulers["digits"],
                             "key": key, **extra})

    samples: dict[str, np.ndarray] = {}
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for job, result in zip(jobs, pool.map(run, jobs)):
            key = job.get("key")
            x = result.pop("samples")
            if key is None:
                samples[f"{job['family']}__{job['model']}"] = x
                report["models"][f"{job['family']}__{job['model']}"] = result
            else:
                report["extras"][f"{job['family']}__{key}"] = result
            print(line(job.get("key") or job["model"], result, rulers[job["family"]]), flush=True)

    np.savez_compressed(args.out / "samples.npz", **samples)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    for family in families:
        grid(args.out / f"{family}.png", rulers[family], {k.split("__")[1]: v for k, v in samples.items()
                                                          if k.startswith(family + "__")})
    print_table(report)


def _option(item: str, parser: argparse.ArgumentParser) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep:
        parser.error(f"--set takes KEY=VALUE, got {item!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a plain string, e.g. --set init=noise


def line(name: str, result: dict[str, Any], ruler: Ruler) -> str:
    scores = ", ".join(f"{k} {v:.3g}" for k, v in result["scores"].items())
    ttq = result["cpu_s_to_quality"]
    return (f"  {result['family']:8s} {name:22s} {'LEARNED' if result['learned'] else 'not yet':8s} {scores}; "
            f"train {result['train_cpu_s']:.0f} CPU-s, to quality {'—' if ttq is None else f'{ttq:.0f} CPU-s'}"
            f"{'; DIVERGED' if result['diverged'] else ''}")


def print_table(report: dict[str, Any]) -> None:
    for family, ruler in report["rulers"].items():
        print(f"\n== {family}: ruler {ruler['name']} (primary {ruler['primary']}, "
              f"{'higher' if ruler['higher_is_better'] else 'lower'} is better; check "
              f"{'passed' if ruler['check_passed'] else 'FAILED'})")
        keys = list(next(iter(ruler["references"].values())))
        print(f"  {'row':24s} " + " ".join(f"{k:>10s}" for k in keys) + f" {'learned':>8s} {'train s':>8s} {'ttq s':>7s}")
        for row, scores in ruler["references"].items():
            print(f"  {'[ref] ' + row:24s} " + " ".join(f"{scores[k]:10.4g}" for k in keys))
        entries = {**{k: v for k, v in report["models"].items() if k.startswith(family + "__")},
                   **{k: v for k, v in report["extras"].items() if k.startswith(family + "__")}}
        for key, r in entries.items():
            ttq = "—" if r["cpu_s_to_quality"] is None else f"{r['cpu_s_to_quality']:.0f}"
            print(f"  {key.split('__')[1]:24s} " + " ".join(f"{r['scores'][k]:10.4g}" for k in keys)
                  + f" {str(r['learned']):>8s} {r['train_cpu_s']:8.0f} {ttq:>7s}")


def grid(path: Path, ruler: Ruler, samples: dict[str, np.ndarray], per_row: int = 8, rows: int = 2) -> None:
    """Real images, then each model's first samples, one labelled panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ggcn.book.viz import image_grid, use_style

    use_style()
    panels = {"real (held out)": ruler.held_out[: per_row * rows]}
    panels.update({name: torch.as_tensor(x[: per_row * rows]).float() / 127.5 - 1 for name, x in samples.items()})
    cols = 4
    fig, axes = plt.subplots((len(panels) + cols - 1) // cols, cols, figsize=(cols * 3.2, 1.9 * ((len(panels) + cols - 1) // cols)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, x) in zip(axes.flat, panels.items()):
        image_grid(x, nrow=per_row, ax=ax, title=name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
