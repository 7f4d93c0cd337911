"""Times RecBole's MultiVAE training epochs on one atomic data set (RecBole's own pipeline).

Runs inside the RecBole virtual environment that `benchmarks/speed_vs_recbole.py` creates
(torch and recbole are not dependencies of keras-recae); it imports nothing from keras-recae.

RecBole's own `Config`, `create_dataset`, `data_preparation`, model and `Trainer` are used;
each epoch is one call of `Trainer._train_epoch`, the call that `Trainer.fit` times as an
epoch's "train" seconds, so data loading and evaluation are not part of an epoch.

RecBole's `latent_dimension` is the width of the encoder's last layer, which holds the mean
and the log-variance side by side: a latent space of L dimensions needs
`latent_dimension = 2 * L`, and the decoder then starts from L.

Usage: python recbole_multivae_epoch.py --data-path DIR --dataset NAME --out RESULT.json
    [--threads 1] [--epochs 2] [--hidden 600] [--latent 200] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", required=True, help="directory holding DATASET/")
    parser.add_argument("--dataset", required=True, help="RecBole data set name")
    parser.add_argument("--out", required=True, help="where to write the result as JSON")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[600])
    parser.add_argument("--latent", type=int, default=200, help="latent space dimensions")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2020)
    return parser.parse_args(argv)


def recbole_config(args: argparse.Namespace) -> dict:
    return {
        "data_path": args.data_path,
        "checkpoint_dir": os.path.join(os.getcwd(), "saved"),
        "use_gpu": False,
        "device": "cpu",
        "worker": 0,
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "state": "WARNING",
        "save_dataset": False,
        "save_dataloaders": False,
        "load_col": {"inter": ["user_id", "item_id"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        # Every interaction of the file is a training one; no evaluation runs.
        "eval_args": {
            "split": {"RS": [1.0, 0.0, 0.0]},
            "order": "RO",
            "group_by": "user",
            "mode": "full",
        },
        "eval_step": 0,
        "epochs": args.epochs,
        "train_batch_size": args.batch_size,
        "learner": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "train_neg_sample_args": None,
        "shuffle": True,
        # MultiVAE: n -> hidden -> 2 * latent (mean, log-variance); latent -> hidden -> n.
        "mlp_hidden_size": list(args.hidden),
        "latent_dimension": 2 * args.latent,
        "dropout_prob": 0.5,
        "anneal_cap": 0.2,
        "total_anneal_steps": 200000,
    }


def prepare(args: argparse.Namespace, config_dict: dict):
    """Caps the threads, then builds RecBole's config, data loaders, MultiVAE and trainer.

    Returns (dataset, (train_data, valid_data, test_data), model, trainer).
    """
    # RecBole's Config also reads `--key=value` settings from sys.argv: give it none.
    sys.argv = sys.argv[:1]
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(args.threads)

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)

    config = Config(model="MultiVAE", dataset=args.dataset, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, loaders[0]._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return dataset, loaders, model, trainer


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    dataset, (train_data, _, _), model, trainer = prepare(args, recbole_config(args))

    import numpy as np
    import recbole
    import torch

    setup_seconds = time.perf_counter() - started

    # RecBole keeps a padding user and a padding item (id 0).
    train_dataset = train_data._dataset
    users, items = train_dataset.user_num - 1, train_dataset.item_num - 1
    interactions = len(train_dataset.inter_feat)
    if interactions != len(dataset.inter_feat):
        raise RuntimeError(
            f"the training set holds {interactions} of {len(dataset.inter_feat)} interactions"
        )

    seconds, cpu_seconds, losses = [], [], []
    for epoch in range(args.epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        losses.append(float(loss))
        print(
            f"RecBole MultiVAE epoch {epoch + 1}: {seconds[-1]:.1f} s "
            f"({cpu_seconds[-1]:.1f} s CPU, {torch.get_num_threads()} threads), "
            f"summed batch loss {loss:.2f}",
            file=sys.stderr,
            flush=True,
        )

    result = {
        "framework": "RecBole",
        "version": recbole.__version__,
        "backend": f"torch {torch.__version__}, numpy {np.__version__}",
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "epoch_seconds": seconds,
        "epoch_cpu_seconds": cpu_seconds,
        "epoch_loss_sums": losses,
        "setup_seconds": setup_seconds,
        "users": users,
        "items": items,
        "interactions": interactions,
        "rows_per_epoch": getattr(train_data, "sample_size", None),
        "batches_per_epoch": len(train_data),
        "batch_size": args.batch_size,
        "architecture": {"encoder": str(model.encoder), "decoder": str(model.decoder)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": {
            key: trainer.config[key]
            for key in (
                "mlp_hidden_size",
                "latent_dimension",
                "dropout_prob",
                "anneal_cap",
                "total_anneal_steps",
                "train_batch_size",
                "learner",
                "learning_rate",
                "train_neg_sample_args",
                "eval_args",
                "device",
            )
        },
    }
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
