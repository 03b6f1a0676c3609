"""Seconds per epoch of the Table 1 models, printed as JSON.

For each model (MLP, ResNet, RK-Net, ODE-Net), in one run on one machine:
  baseline   the same model class, initial weights, data, batch order, Adam with the same cosine decay, in a
             plain torch loop; the ODE solves call torchdiffeq directly (no odeviz.solve, Trainer or snapshots),
  odeviz     ``Table1Experiment`` headless: its background trainer with snapshots at 10 Hz, as under the page.

Two times per epoch: the training steps alone (what the table's "s / epoch" reports) and the whole epoch
on the wall clock, with the test-error evaluation (and, for odeviz, the activation measurement and the
snapshots). The machine's load average is printed too: the numbers are only comparable within one run.

    python benchmarks/bench_table1.py [--epochs 2] [--repeats 2]
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torchdiffeq import odeint, odeint_adjoint

from odeviz.data.digits import load_digit_data
from odeviz.experiments import Table1Experiment
from odeviz.experiments.table1 import EVALUATION_BATCH, MODELS
from odeviz.runtime import configure_torch
from odeviz.models.table1 import MLP, ODENet, ConvResNet


def build_models(experiment: Table1Experiment, side: int, pixels: int) -> dict:
    """The four models with the weights Table1Experiment starts from (same seed, same order)."""
    torch.manual_seed(experiment.seed)
    channels = experiment.channels
    return {"mlp": MLP(pixels), "resnet": ConvResNet(channels, side), "rknet": ODENet(channels, side),
            "odenet": ODENet(channels, side)}


def plain_forward(key: str, model, images: torch.Tensor, settings: Table1Experiment, nfe: list[int]):
    if key in ("mlp", "resnet"):
        return model(images)
    t = torch.tensor([0.0, 1.0])

    def field(t, h):  # counted here, as the table counts it, to check both loops do the same work
        nfe[0] += 1
        return model.field(t, h)

    if key == "rknet":
        ys = odeint(field, model.stem(images), t, method="rk4", options={"step_size": 1.0 / settings.rk_steps})
    else:
        module = _Field(field, model.field)
        ys = odeint_adjoint(module, model.stem(images), t, method="dopri5", rtol=settings.rtol, atol=settings.atol)
    return model.readout(ys[-1])


class _Field(torch.nn.Module):
    """A counting function as an nn.Module with the field's parameters, which odeint_adjoint needs."""

    def __init__(self, function, field) -> None:
        super().__init__()
        self.function, self.field = function, field

    def forward(self, t, h):
        return self.function(t, h)


def baseline(key: str, epochs: int, settings: Table1Experiment) -> dict:
    data = load_digit_data(None, settings.seed)
    train_x, train_y = torch.as_tensor(data.train_images), torch.as_tensor(data.train_labels)
    test_x, test_y = torch.as_tensor(data.test_images), torch.as_tensor(data.test_labels)
    model = build_models(settings, data.side, data.pixels)[key]
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    batch, batches = settings.batch_size, math.ceil(len(train_y) / settings.batch_size)
    train_seconds, wall_seconds, nfe = [], [], [0]
    for epoch in range(epochs):
        nfe[0] = 0  # per step over the last epoch, as the table reports it
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch))
        for b in range(batches):
            progress = (epoch + b / batches) / epochs
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
            index = order[b * batch: (b + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(plain_forward(key, model, train_x[index], settings, nfe), train_y[index]).backward()
            optimizer.step()
        train_seconds.append(time.perf_counter() - start)
        nfe_per_step = nfe[0] / batches
        model.eval()
        with torch.no_grad():
            wrong = sum(int((plain_forward(key, model, test_x[s: s + EVALUATION_BATCH], settings, nfe).argmax(1)
                             != test_y[s: s + EVALUATION_BATCH]).sum()) for s in range(0, len(test_y), EVALUATION_BATCH))
        wall_seconds.append(time.perf_counter() - start)
    return {"train_s_per_epoch": sum(train_seconds) / epochs, "wall_s_per_epoch": sum(wall_seconds) / epochs,
            "nfe_per_step": nfe_per_step, "test_error_percent": 100.0 * wrong / len(test_y)}


def headless(key: str, epochs: int) -> dict:
    experiment = Table1Experiment(models=[key], epochs=epochs)
    experiment.trainer.wait_idle()  # construction (memory sweep, first picture) is not training
    start = time.perf_counter()
    experiment.start()
    while experiment.trainer.state != "done":
        time.sleep(0.01)
    wall = time.perf_counter() - start
    experiment.trainer.wait_idle()  # the picture of the finished table is published just after "done"
    row = experiment.trainer.mailbox.latest().rows[0]
    assert row.epochs_done == epochs, row
    experiment.close()
    nfe = row.nfe_forward + (0 if math.isnan(row.nfe_backward) else row.nfe_backward)
    return {"train_s_per_epoch": row.seconds_per_epoch, "wall_s_per_epoch": wall / epochs,
            "nfe_per_step": nfe if key in ("rknet", "odenet") else 0.0, "test_error_percent": row.test_error}


def best(runs: list[dict]) -> dict:
    """The fastest of repeated runs (the least disturbed by other work on the machine), field by field."""
    return {name: round(min(run[name] for run in runs), 4) for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each loop; the fastest is reported")
    arguments = parser.parse_args()
    epochs = arguments.epochs
    configure_torch()
    settings = Table1Experiment(epochs=epochs)
    settings.close()
    load_before = os.getloadavg()[0]
    runs = {key: {"baseline": [], "odeviz": []} for key in MODELS}
    for _ in range(arguments.repeats):  # interleaved, so both loops see the same load
        for key in MODELS:
            runs[key]["baseline"].append(baseline(key, epochs, settings))
            runs[key]["odeviz"].append(headless(key, epochs))
    models = {}
    for key in MODELS:
        models[key] = {"baseline": best(runs[key]["baseline"]), "odeviz": best(runs[key]["odeviz"])}
        for time_kind in ("train", "wall"):
            # Each repeat's two runs follow each other, so their ratio sees one load: the median of those.
            ratios = [ours[f"{time_kind}_s_per_epoch"] / plain[f"{time_kind}_s_per_epoch"]
                      for plain, ours in zip(runs[key]["baseline"], runs[key]["odeviz"])]
            models[key][f"{time_kind}_odeviz_vs_baseline_median"] = round(statistics.median(ratios), 2)
            models[key][f"{time_kind}_odeviz_vs_baseline_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    print(json.dumps({
        "benchmark": f"Table 1 on 8×8 digits: {epochs} epochs per model, best of {arguments.repeats}, "
                     f"batch {settings.batch_size}, "
                     f"C = {settings.channels}, RK4 L̃ = {settings.rk_steps}, dopri5 rtol {settings.rtol:g} "
                     f"atol {settings.atol:g} with the adjoint",
        "torch_threads": torch.get_num_threads(),
        "cpu_cores": os.cpu_count(),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "models": models,
    }, indent=2))


if __name__ == "__main__":
    main()
