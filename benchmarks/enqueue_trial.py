"""Queues settings as a study's next trial: the next `keras-recae tune` on the study runs it.

    python benchmarks/enqueue_trial.py benchmarks/studies/gowalla-mult-vae \
        lr=1e-3 dropout=0.33 beta_cap=0.2 total_anneal_steps=20000

Each value is read as JSON (`'hidden_dims=[200]'`); a list goes in as its JSON text, the
way the tuner stores list choices. A queued value outside its dimension is run as it is and
recorded with the dimension widened to hold it. `--create NAME` starts the study first when
the directory holds none (NAME is the tuner's study name, the model's by default; the
objective is maximised, as a ranking metric is).
"""

import argparse
import json
import sys
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from keras_recae.tuning import STUDY_FILE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir")
    parser.add_argument("settings", nargs="+", metavar="NAME=VALUE")
    parser.add_argument("--create", metavar="NAME", help="start a study of this name if none")
    args = parser.parse_args(argv)
    params = {}
    for item in args.settings:
        name, sep, text = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: expected NAME=VALUE")
        value = json.loads(text)
        params[name] = json.dumps(value) if isinstance(value, list) else value
    journal = Path(args.study_dir) / STUDY_FILE
    if args.create:
        journal.parent.mkdir(parents=True, exist_ok=True)
    elif not journal.is_file():
        parser.error(f"{journal} does not exist: pass --create NAME to start a study there")
    storage = JournalStorage(JournalFileBackend(str(journal)))
    if args.create:
        study = optuna.create_study(
            storage=storage, study_name=args.create, direction="maximize", load_if_exists=True
        )
    else:
        study = optuna.load_study(study_name=None, storage=storage)
    study.enqueue_trial(params, skip_if_exists=True)
    print(f"{args.study_dir}: queued {params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
