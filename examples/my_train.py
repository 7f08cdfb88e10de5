"""A researcher's own training script, knowing nothing of ucbx.

Fits a one-hidden-layer network (NumPy, mini-batch SGD with momentum) to a noisy
two-input regression task and reports its metrics after every epoch:

    python my_train.py --config my_train_config.yaml --out runs/try1
    python my_train.py --config my_train_config.yaml --out runs/try1 --metrics analysis.log

``--metrics`` names the file written inside ``--out``: a ``.jsonl`` file gets one JSON
object per epoch, any other name gets ``name: value`` lines for the last epoch.
A learning rate that is too high makes the loss nan; the script then reports nan and
stops, as most scripts would.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import yaml


def make_data(n_samples, noise, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_samples, 2))
    y = np.sin(3 * x[:, :1]) + x[:, 1:] ** 2 + noise * rng.standard_normal((n_samples, 1))
    split = int(0.8 * n_samples)
    return (x[:split], y[:split]), (x[split:], y[split:])


def init_params(hidden, rng):
    return {
        "w1": rng.standard_normal((2, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.standard_normal((hidden, 1)) / math.sqrt(hidden),
        "b2": np.zeros(1),
    }


def forward(params, x):
    h = np.tanh(x @ params["w1"] + params["b1"])
    return h, h @ params["w2"] + params["b2"]


def gradients(params, x, y):
    h, pred = forward(params, x)
    d_pred = 2 * (pred - y) / len(x)
    d_h = (d_pred @ params["w2"].T) * (1 - h**2)
    return {"w1": x.T @ d_h, "b1": d_h.sum(0), "w2": h.T @ d_pred, "b2": d_pred.sum(0)}


def mse(params, x, y):
    return float(np.mean((forward(params, x)[1] - y) ** 2))


def write_metrics(path, record):
    if path.suffix == ".jsonl":
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    else:
        path.write_text("".join(f"{name}: {value}\n" for name, value in record.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", default="metrics.jsonl")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    data, model, train = config["data"], config["model"], config["train"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / args.metrics
    metrics_path.unlink(missing_ok=True)

    (x_train, y_train), (x_val, y_val) = make_data(data["n_samples"], data["noise"], data["seed"])
    rng = np.random.default_rng(train["seed"])
    params = init_params(model["hidden"], rng)
    velocity = {name: np.zeros_like(value) for name, value in params.items()}
    with np.errstate(all="ignore"):
        for epoch in range(1, train["epochs"] + 1):
            for batch in np.array_split(rng.permutation(len(x_train)), max(1, len(x_train) // train["batch_size"])):
                grads = gradients(params, x_train[batch], y_train[batch])
                for name in params:
                    velocity[name] = train["momentum"] * velocity[name] - train["lr"] * (
                        grads[name] + train["weight_decay"] * params[name]
                    )
                    params[name] += velocity[name]
            val_loss = mse(params, x_val, y_val)
            record = {
                "epoch": epoch,
                "train_loss": mse(params, x_train, y_train),
                "val_loss": val_loss,
                "val_r2": 1 - val_loss / float(np.var(y_val)),
            }
            if not math.isfinite(val_loss) or epoch == train["epochs"] or metrics_path.suffix == ".jsonl":
                write_metrics(metrics_path, record)
            if not math.isfinite(val_loss):
                print(f"epoch {epoch}: loss is nan, stopping")
                break
            print(f"epoch {epoch}: train {record['train_loss']:.4f} val {val_loss:.4f} r2 {record['val_r2']:.3f}")


if __name__ == "__main__":
    main()
