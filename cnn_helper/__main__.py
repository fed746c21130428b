"""Command line: ``python -m cnn_helper {tour,train,figures} ...``

tour     load MNIST, get the trained CNN, print its test accuracy, write interpretation figures
train    retrain a model (seeded) and save it to the user cache (or --out DIR)
figures  redraw every static image the notebooks embed (the lecture diagrams) into --out DIR
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _save(fig, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"  wrote {path}")
    return path


def tour(out: str, data_source: str = "auto") -> list:
    """The main job: data, trained CNN, accuracy, and a figure for each idea of the lectures."""
    from . import tour as tour_mod

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    figures = tour_mod.run(data_source)
    written = [_save(fig, out_dir, name) for name, fig in figures]
    print(f"tour done in {time.perf_counter() - start:.0f} s: {len(written)} figures in {out_dir}/")
    return written


def train(name: str, data_source: str, epochs, seed: int, out):
    from . import models

    model, info = models.train(name, data_source=data_source, epochs=epochs, seed=seed,
                               directory=out)
    print(f"trained {name}: {info['epochs']} epochs on {info['data_source']} MNIST in "
          f"{info['train_seconds']} s; test accuracy {info['test_accuracy']:.4f}; saved in "
          f"{info['loaded_from']}")
    return model


def figures(out: str = "images") -> list:
    """Redraw every static image the lecture notebooks embed (``cnn_helper.diagrams``)."""
    from . import diagrams

    written = diagrams.write_all(out)
    for path in written:
        print(f"  wrote {path}")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_helper", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_tour = sub.add_parser("tour", help="data, trained CNN, accuracy and interpretation figures")
    p_tour.add_argument("--out", default="tour_figures",
                        help="folder for the figures (default: %(default)s)")
    p_tour.add_argument("--data", default="auto", choices=["auto", "keras", "bundled"])
    p_train = sub.add_parser("train", help="retrain a model and save its weights")
    p_train.add_argument("--model", default="cnn", choices=["cnn", "logistic"])
    p_train.add_argument("--data", default="auto", choices=["auto", "keras", "bundled"])
    p_train.add_argument("--epochs", type=int, default=None)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--out", default=None,
                         help="folder for the weights (default: the user cache)")
    p_figures = sub.add_parser("figures", help="redraw the static images the notebooks embed")
    p_figures.add_argument("--out", default="images",
                           help="folder for the images (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "tour":
        tour(args.out, args.data)
    elif args.command == "train":
        train(args.model, args.data, args.epochs, args.seed, args.out)
    elif args.command == "figures":
        figures(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
