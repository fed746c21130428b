"""Command line: ``python -m cnn_helper {tour,train,figures,explain} ...`` (or ``cnn-helper``)

tour     load MNIST, get the trained CNN, print its test accuracy, write interpretation figures
train    retrain a model (seeded) and save it to the user cache (or --out DIR); --model cnn_blobs
         is the CNN trained with random bright squares added to its images (data augmentation)
figures  redraw every static image the notebooks embed (the lecture diagrams) into --out DIR
explain  explain a model's predictions on image files: one figure per image and an index.html

Every command takes --verbose: show TensorFlow's native start-up lines (as CNN_HELPER_VERBOSE=1).
--data-source (also spelled --data) chooses where the data come from, as data_source= does in
Python. A bad value is a usage error (exit 2); a source that cannot give the data (no Keras cache,
no answer from the origin, a damaged file) is one line on stderr with the sources to use instead
(exit 1).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import _quiet, cli_explain


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
    from . import data, models

    model, info = models.train(name, data_source=data_source, epochs=epochs, seed=seed,
                               directory=out)
    blobs = info["augmentation"]
    augmented = (f" with blobs (each epoch {blobs['probability']:.0%} of the images get "
                 f"{blobs['count'][0]} to {blobs['count'][1]} bright squares of side "
                 f"{blobs['size'][0]} to {blobs['size'][1]} px)") if blobs else ""
    labels = " with permuted labels" if info["labels"] == "permuted" else ""
    print(f"trained {name}{augmented}: {info['epochs']} epochs on {info['data_source']} "
          f"{data.TITLES[info['dataset']]}{labels} in {info['train_seconds']} s; training "
          f"accuracy {info['train_accuracy']:.4f}, test accuracy {info['test_accuracy']:.4f}; "
          f"saved in {info['loaded_from']}")
    return model


def figures(out: str = "images") -> list:
    """Redraw every static image the lecture notebooks embed (``cnn_helper.diagrams``)."""
    from . import diagrams

    written = diagrams.write_all(out)
    for path in written:
        print(f"  wrote {path}")
    return written


def _int_at_least(least: int, meaning: str):
    """An argparse ``type``: the text as an int >= ``least``, else a usage error (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({meaning})") \
                from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is too small: {meaning}")
        return value
    return parse


def _folder(text: str) -> str:
    """An argparse ``type``: a non-empty path that is not an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a folder, e.g. --out my_folder")
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    return text


OUTPUTS = {"tour": "the figures", "train": "the trained weights", "figures": "the images",
           "explain": "the figures"}


def _check_out(parser, command: str, folder) -> None:
    """Exit 2 with the usage when ``folder`` cannot be written, before any work is done."""
    from . import models

    try:
        models.check_writable(models.cache_dir() if folder is None else folder,
                              OUTPUTS[command], example="--out my_folder")
    except ValueError as e:
        parser.error(str(e))


def _check_data(parser, model: str, source: str):
    """The model's data set has ``source`` (Fashion-MNIST has no bundled subset, MNIST no
    Debian package), and a source that may download has an origin URL; exit 2 saying what is
    wrong otherwise."""
    from . import data, models

    dataset = models.DATASET_OF.get(model, "mnist")
    if source not in data.DATASETS[dataset]:
        parser.error(f"--data-source {source}: model {model} is trained on {dataset}, whose "
                     f"sources are {', '.join(data.DATASETS[dataset])}")
    if source in ("auto", "download"):
        try:
            data.data_origin()
        except ValueError as e:
            parser.error(f"--data-source {source} would download from ${data.ORIGIN_VARIABLE}: {e}")


def _data_options(sources) -> str:
    """The command line's words for sources to use instead: "--data-source download,
    --data-source bundled or --data-source auto" (``data.reword`` puts them in place of Python's
    data_source='download' / ...)."""
    options = [f"--data-source {source}" for source in sources]
    if len(options) == 1:
        return options[0]
    return f"{', '.join(options[:-1])} or {options[-1]}"


def _parser():
    """The command line: four sub-commands, every value checked by argparse (bad -> exit 2)."""
    from . import data
    from .models import MODELS

    parser = argparse.ArgumentParser(prog="python -m cnn_helper", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_tour = sub.add_parser("tour", help="data, trained CNN, accuracy and interpretation figures")
    p_tour.add_argument("--out", default="tour_figures", type=_folder,
                        help="folder for the figures (default: %(default)s)")
    p_tour.add_argument("--data-source", "--data", default="auto", choices=data.SOURCES,
                        help="where MNIST comes from (cnn_helper.data; default: %(default)s)")
    p_train = sub.add_parser("train", help="retrain a model and save its weights")
    p_train.add_argument("--model", default="cnn", choices=MODELS,
                         help="see cnn_helper.models; cnn_blobs: the CNN trained with random "
                         "bright squares (blobs) added to its training images, fashion_cnn: on "
                         "Fashion-MNIST, cnn_random_labels: on permuted labels (default: "
                         "%(default)s)")
    p_train.add_argument("--data-source", "--data", default="auto",
                         choices=sorted(set(data.SOURCES + data.FASHION_SOURCES)),
                         help="where the model's data set comes from: an MNIST source, or for "
                         "fashion_cnn a Fashion-MNIST one (cnn_helper.data; default: auto)")
    p_train.add_argument("--epochs", type=_int_at_least(1, "epochs must be at least 1"),
                         default=None, help="passes over the data (default: the model's own)")
    p_train.add_argument("--seed", type=_int_at_least(0, "seeds are ints >= 0"), default=0)
    p_train.add_argument("--out", default=None, type=_folder,
                         help="folder for the weights (default: the user cache)")
    p_figures = sub.add_parser("figures", help="redraw the static images the notebooks embed")
    p_figures.add_argument("--out", default="images", type=_folder,
                           help="folder for the images (default: %(default)s)")
    commands = {"tour": p_tour, "train": p_train, "figures": p_figures,
                "explain": cli_explain.add_parser(sub, _folder)}
    for command in commands.values():
        command.add_argument("--verbose", action="store_true",
                             help="show TensorFlow's native start-up lines")
    return parser, commands


def main(argv=None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(cli_explain.joined_values(sys.argv[1:] if argv is None else argv))
    if args.verbose:
        _quiet.ask_for_verbose()
    _check_out(commands[args.command], args.command, args.out)
    if args.command in ("tour", "train"):          # the commands that take --data-source
        _check_data(commands[args.command], getattr(args, "model", "cnn"),  # tour: the cnn
                    args.data_source)
    if args.command == "explain":
        return cli_explain.run(args)
    from . import data

    try:
        if args.command == "tour":
            tour(args.out, args.data_source)
        elif args.command == "train":
            train(args.model, args.data_source, args.epochs, args.seed, args.out)
        elif args.command == "figures":
            figures(args.out)
    except data.SourceError as e:                  # no cache, no download: one line, exit 1
        print(f"cnn-helper {args.command}: error: {data.reword(str(e), _data_options)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
