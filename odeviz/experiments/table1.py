"""The paper's Table 1 as an experiment: MLP, ResNet, RK-Net and ODE-Net learn handwritten digits.

The four models train one after another (only those selected), each for ``epochs`` epochs of
minibatches with Adam, a one-epoch warm-up and a cosine learning-rate decay, and each ``seeds`` times
from other initial weights and batch orders (the same data), so a row's error has a spread. After every epoch a model's row is brought up
to date: its test error, parameters, the bytes of activations its forward pass keeps for the backward
pass, seconds per epoch, and (for the ODE solves) evaluations of f per forward and backward pass.
Snapshots also carry a memory-against-depth sweep (ResNet with L blocks, RK-Net with L̃ steps,
ODE-Net with the adjoint at the same L̃) and one test digit's hidden state through the ResNet's depth
and the ODE-Net's time.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import param
import torch
import torch.nn.functional as F
from torch import nn

from ..data.digits import DigitData, load_digit_data, load_mnist
from ..numerics.memory import saved_activation_bytes
from ..numerics.config import SolverConfig
from ..numerics.solve import CancelToken, solve
from ..models.table1 import MLP, ODENet, ConvResNet, parameter_count
from .base import Experiment, Real
from .saved import plain
from .table1_memory import MemorySweep, measure_memory_sweep
from .table1_results import PAPER_TABLE1, HiddenStates, ModelRow, Table1Snapshot
from .trainer import TrainingComplete

MODELS = ("mlp", "resnet", "rknet", "odenet")
MODEL_LABELS = {"mlp": "1-layer MLP", "resnet": "ResNet", "rknet": "RK-Net", "odenet": "ODE-Net"}
SOLVED = ("rknet", "odenet")  # the models whose block is an ODE solve


HIDDEN_CHANNELS = 4  # channels of the hidden state drawn (those that change most)
ODE_IMAGE_TIMES = np.linspace(0.0, 1.0, 13)
HIDDEN_PERIOD = 1.0  # seconds between hidden-state redraws while training runs
EVALUATION_BATCH = 1000
_FIXED_GRAPH_BYTES: dict[tuple, int] = {}  # activation bytes by model and shapes, for graphs whose size the weights do not set
WARMUP_EPOCHS = 1.0  # of a 12-epoch table


class MnistDirectory(param.String):
    """A directory of MNIST IDX files, read when set: a bad one is refused with the reason."""

    def _validate_value(self, value, allow_None):
        super()._validate_value(value, allow_None)
        if value:
            load_mnist(value)  # MnistError (a ValueError) names the file and what is wrong with it


@dataclass
class ModelRun:
    """One model's training: weights, optimiser, where it is in its epochs, and what it measured."""

    key: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    params: int
    activation_bytes: int
    replica: int = 0  # trained from seed + replica
    epochs_done: int = 0
    batch: int = 0  # minibatches done in the current epoch
    order: torch.Tensor | None = None  # the current epoch's shuffled training indices
    evaluation_pending: bool = False
    epoch_seconds: float = 0.0
    epoch_nfe: list[tuple[int, int]] = field(default_factory=list)
    steps: int = 0
    test_errors: list[float] = field(default_factory=list)  # % after each epoch
    train_losses: list[float] = field(default_factory=list)  # mean over each epoch
    seconds_per_epoch: list[float] = field(default_factory=list)
    nfe_forward: float = math.nan  # mean per iteration over the last epoch
    nfe_backward: float = math.nan
    _losses: list[float] = field(default_factory=list)


class Table1Experiment(Experiment):
    """MLP, ResNet, RK-Net and ODE-Net trained one after another on the same digits."""

    runs_remotely = False  # its page reads more than snapshots and history (measurements, a data folder)

    models = param.ListSelector(default=list(MODELS), objects=list(MODELS), doc="the models to train, in table order")
    # 12: each model's test error has stopped falling by then (measured over 3 seeds: flat over the last 3 epochs).
    epochs = param.Integer(12, bounds=(1, 1000), doc="passes over the training images for each model")
    seeds = param.Integer(1, bounds=(1, 20), doc="trainings of each model, from seed, seed + 1, … (initial weights "
                                                "and batch order; the same data): the table shows mean ± std")
    batch_size = param.Integer(32, bounds=(1, 4096), doc="images per training step")
    channels = param.Integer(16, bounds=(2, 128), doc="feature maps of the ResNet, RK-Net and ODE-Net (the paper: 64)")
    rk_steps = param.Integer(4, bounds=(1, 256), doc="RK-Net: fixed RK4 steps L̃ on [0, 1] (4 evaluations of f each)")
    rtol = Real(doc="ODE-Net: relative tolerance of the adaptive solver")
    atol = Real(1e-3, doc="ODE-Net: absolute tolerance of the adaptive solver")
    mnist_dir = MnistDirectory(None, allow_None=True, doc="directory of MNIST IDX files (raw or .gz); empty: 8×8 digits")
    digit = param.Integer(0, bounds=(0, None), doc="the test image whose hidden state is drawn")
    restart_on = ("mnist_dir", "channels", "batch_size", "seed", "seeds")  # the table starts over

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.data: DigitData = load_digit_data(self.mnist_dir, self.seed)
        self.train_images = torch.as_tensor(self.data.train_images, device=self.device)
        self.train_labels = torch.as_tensor(self.data.train_labels, device=self.device)
        self.test_images = torch.as_tensor(self.data.test_images, device=self.device)
        self.test_labels = torch.as_tensor(self.data.test_labels, device=self.device)
        self._batch_size = min(self.batch_size, len(self.train_labels))
        side = self.data.side
        self.replicas: dict[str, list[ModelRun]] = {key: [] for key in MODELS}
        for replica in range(self.seeds):
            with torch.random.fork_rng():  # the first seed's weights are those of a one-seed table
                if replica:
                    torch.manual_seed(self.seed + replica)
                for key, model in (("mlp", lambda: MLP(self.data.pixels)), ("resnet", lambda: ConvResNet(self.channels, side)),
                                   ("rknet", lambda: ODENet(self.channels, side)), ("odenet", lambda: ODENet(self.channels, side))):
                    self.replicas[key].append(self._new_run(key, model(), replica))
        self.runs = {key: runs[0] for key, runs in self.replicas.items()}  # the first seed's: drawn, tested
        self._current: ModelRun | None = None
        # The model in training: the base step checks its gradients and keeps its last good weights
        # (copying all four models instead made the MLP's steps 6× slower: benchmarks/bench_table1.py).
        self.model, self.optimizer = self.runs["mlp"].model, self.runs["mlp"].optimizer
        self._memory = self._memory_sweep()
        self._hidden_cache: tuple[object, float, HiddenStates] | None = None

    def _new_run(self, key: str, model: nn.Module, replica: int) -> ModelRun:
        model = model.to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        return ModelRun(key, model, optimizer, parameter_count(model), self._activation_bytes(key, model), replica)

    @param.depends("models", "epochs", "rk_steps", "adjoint", "digit", "method", "rtol", "atol", watch=True)
    def _redraw(self) -> None:
        # The rows, their memory or the hidden states change; training picks the settings up next step.
        self.trainer.submit(self._remeasure)

    def _remeasure(self) -> None:
        for key in SOLVED:  # what the solve keeps for backward depends on L̃, the adjoint, the tolerance
            for run in self.replicas[key]:
                run.activation_bytes = self._activation_bytes(key, run.model)
        self._hidden_cache = None

    # ---- forward passes -----------------------------------------------------------------------
    def _solvers(self) -> dict[str, SolverConfig]:
        """How the blocks solve: the RK-Net in L̃ RK4 steps, backpropagated through the solver; the ODE-Net
        as the solver params say."""
        return {"rknet": SolverConfig("rk4", steps=self.rk_steps, max_nfe=self.max_nfe), "odenet": self.solver_config()}

    def _forward(self, key: str, model: nn.Module, images: torch.Tensor, token: CancelToken | None = None):
        """Logits and the solve's stats (None for the MLP and the ResNet)."""
        if key in SOLVED:
            return model(images, solver=self._solvers()[key], token=token)
        return model(images), None

    def _activation_bytes(self, key: str, model: nn.Module) -> int:
        images = self.train_images[: self._batch_size].clone()  # its own storage: not the whole dataset
        # A graph of fixed shape (all but the ODE-Net backpropagated through its adaptive solve, whose
        # steps follow the weights) keeps the same bytes whatever the weights: counted once per process.
        fixed = key != "odenet" or self.adjoint
        graph = (key, self.channels, self.data.side, tuple(images.shape), images.dtype, str(images.device),
                 self._solvers().get(key))
        if fixed and graph in _FIXED_GRAPH_BYTES:
            return _FIXED_GRAPH_BYTES[graph]
        _, saved = saved_activation_bytes(lambda: self._forward(key, model, images), model.parameters())
        if fixed:
            _FIXED_GRAPH_BYTES[graph] = saved
        return saved

    def _memory_sweep(self) -> MemorySweep:
        """Saved bytes for one batch against L: they depend on the architectures and the batch's shape
        only, so each is measured once per process (a reset or a loaded run does not pay ~10 s again)."""
        images = self.train_images[: self._batch_size]
        return measure_memory_sweep(self.channels, self.data.side, tuple(images.shape), images.dtype, str(images.device))

    # ---- training -------------------------------------------------------------------------------
    def _run_to_train(self) -> ModelRun:
        for key in MODELS:
            for run in self.replicas[key] if key in self.models else ():
                if run.epochs_done < self.epochs:
                    return run
        raise TrainingComplete("every selected model has trained its epochs")

    def total_iterations(self) -> int:
        """Training steps still needed to fill the table (for the CLI's progress bar)."""
        batches = self.batches_per_epoch
        return sum(
            max(0, self.epochs - run.epochs_done) * batches - run.batch
            for key, runs in self.replicas.items() for run in runs if key in self.models and run.epochs_done < self.epochs
        )

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_labels) / self._batch_size)

    def train_step(self, token: CancelToken) -> dict[str, float]:
        run = self._run_to_train()
        if run.evaluation_pending:  # an epoch's test was interrupted by a pause: finish it first
            self._end_epoch(run, token)
            run = self._run_to_train()
        if run is not self._current:
            if self._current is not None:
                self._current.model.zero_grad(set_to_none=True)
            self._current, self.model, self.optimizer = run, run.model, run.optimizer
            self.forget_checkpoints()  # roll back only the model in training, against its own losses
        start = time.perf_counter()
        scalars = super().train_step(token)
        run.epoch_seconds += time.perf_counter() - start
        run.epoch_nfe.append((scalars["nfe_forward"], scalars["nfe_backward"]))
        run._losses.append(scalars["loss"])
        run.batch += 1
        run.steps += 1
        epoch = run.epochs_done + run.batch / self.batches_per_epoch
        if run.batch == self.batches_per_epoch:
            run.evaluation_pending = True
            self._end_epoch(run, token)
        return {**scalars, "model": float(MODELS.index(run.key)), "epoch": epoch}

    def _learning_rate(self) -> float:
        """A linear warm-up over each model's first epoch (Adam's first steps at the full rate threw the
        ResNet back to 81 % error after epoch 1, still falling at epoch 8), then a cosine decay to 0."""
        run = self._current
        epoch = run.epochs_done + run.batch / self.batches_per_epoch
        warmup = min(1.0, WARMUP_EPOCHS * self.epochs / 8)  # a short table warms up for less
        if epoch < warmup:
            return self.learning_rate * (epoch + 1 / self.batches_per_epoch) / warmup
        progress = (epoch - warmup) / (self.epochs - warmup) if self.epochs > warmup else 1.0
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def _loss(self, token: CancelToken):
        run = self._current
        if run.batch == 0 or run.order is None:
            generator = torch.Generator().manual_seed((self.seed + run.replica) * 1000 + run.epochs_done)
            run.order = torch.randperm(len(self.train_labels), generator=generator).to(self.device)
        batch = run.order[run.batch * self._batch_size: (run.batch + 1) * self._batch_size]
        logits, stats = self._forward(run.key, run.model, self.train_images[batch], token)
        loss = F.cross_entropy(logits, self.train_labels[batch])
        return loss, {}, stats

    def _end_epoch(self, run: ModelRun, token: CancelToken) -> None:
        """Test error and memory after an epoch; the epoch counts once they are measured."""
        error = self.test_error(run.key, token, run)
        run.activation_bytes = self._activation_bytes(run.key, run.model)
        run.test_errors.append(error)
        run.train_losses.append(float(np.mean(run._losses)))
        run.seconds_per_epoch.append(run.epoch_seconds)
        nfe = np.array(run.epoch_nfe, dtype=float)
        run.nfe_forward, run.nfe_backward = nfe.mean(0) if len(nfe) else (math.nan, math.nan)
        run.epochs_done += 1
        run.batch, run.order, run.evaluation_pending = 0, None, False
        run.epoch_seconds, run.epoch_nfe, run._losses = 0.0, [], []

    @torch.no_grad()
    def test_error(self, key: str, token: CancelToken | None = None, run: ModelRun | None = None) -> float:
        """% of the test images the model (of the first seed, or ``run``) gets wrong."""
        model = (run or self.runs[key]).model
        model.eval()
        wrong = 0
        for start in range(0, len(self.test_labels), EVALUATION_BATCH):
            images = self.test_images[start: start + EVALUATION_BATCH]
            logits, _ = self._forward(key, model, images, token)
            wrong += int((logits.argmax(1) != self.test_labels[start: start + EVALUATION_BATCH]).sum())
        return 100.0 * wrong / len(self.test_labels)

    # ---- saving: every model's weights, optimiser and progress through its epochs --------------
    PROGRESS = ("epochs_done", "batch", "steps", "test_errors", "train_losses", "seconds_per_epoch", "nfe_forward",
                "nfe_backward", "epoch_seconds", "epoch_nfe", "_losses", "evaluation_pending")

    def _weights_state(self, with_optimizer: bool) -> dict:
        return {key: {"model": run.model.state_dict(),
                      **({"optimizer": run.optimizer.state_dict()} if with_optimizer else {}),
                      "order": run.order, **plain({name: getattr(run, name) for name in self.PROGRESS})}
                for key, run in self.runs.items()}

    def _load_weights_state(self, weights: dict) -> None:
        for key, run in self.runs.items():
            saved = weights[key]
            run.model.load_state_dict(saved["model"])
            if "optimizer" in saved:
                run.optimizer.load_state_dict(saved["optimizer"])
            run.order = saved["order"]
            for name in self.PROGRESS:
                setattr(run, name, saved[name])
            run.activation_bytes = self._activation_bytes(key, run.model)
        self._hidden_cache = None

    # ---- display ----------------------------------------------------------------------------------
    def _row(self, key: str) -> ModelRow:
        """The first seed's row until every seed is done, then the mean over them."""
        replicas = self.replicas[key]
        finished = np.array([r.test_errors[-1] for r in replicas if r.epochs_done >= self.epochs], dtype=float)
        run = next((r for r in replicas if r.epochs_done < self.epochs), replicas[-1])
        if run.epochs_done >= self.epochs:
            status = "done"
        elif run is self._current and (run.batch or run.epochs_done) and self.trainer.state == "running":
            status = "training"
        elif run.batch or run.epochs_done or len(finished):
            status = "paused"
        else:
            status = "waiting"
        backward = run.nfe_backward if run.key == "odenet" and self.adjoint else math.nan
        return ModelRow(
            key=run.key,
            label=MODEL_LABELS[run.key],
            status=status,
            epochs_done=run.epochs_done,
            epochs=self.epochs,
            test_error=float(finished.mean()) if len(finished) else run.test_errors[-1] if run.test_errors else math.nan,
            params=run.params,
            activation_bytes=run.activation_bytes,
            seconds_per_epoch=float(np.mean(seconds)) if (seconds := [s for r in replicas for s in r.seconds_per_epoch]) else math.nan,
            nfe_forward=run.nfe_forward if run.key in SOLVED else math.nan,
            nfe_backward=backward,
            test_errors=np.array(replicas[0].test_errors, dtype=float),
            train_losses=np.array(replicas[0].train_losses, dtype=float),
            paper=PAPER_TABLE1[run.key],
            seed_errors=finished,
            seeds=len(replicas),
        )

    def snapshot(self, token: CancelToken, iteration: int) -> Table1Snapshot:
        current = self._current.key if self._current is not None and self.trainer.state == "running" else None
        return Table1Snapshot(
            iteration=iteration,
            dataset=self.data.name,
            train_size=len(self.train_labels),
            test_size=len(self.test_labels),
            current=current,
            rows=tuple(self._row(key) for key in MODELS if key in self.models),
            memory=self._memory,
            hidden=self._hidden_states(token),
        )

    def _hidden_states(self, token: CancelToken) -> HiddenStates:
        """Recomputed when the ResNet or ODE-Net changed, at most once a second while training runs."""
        key = (self.digit, self.runs["resnet"].steps, self.runs["odenet"].steps, self.display_solver())
        now = time.monotonic()
        if self._hidden_cache is not None:
            cached_key, when, hidden = self._hidden_cache
            if cached_key == key or (self.trainer.running and now - when < HIDDEN_PERIOD):
                return hidden
        hidden = self._compute_hidden_states(token)
        self._hidden_cache = (key, now, hidden)
        return hidden

    @torch.no_grad()
    def _compute_hidden_states(self, token: CancelToken) -> HiddenStates:
        index = min(self.digit, len(self.test_labels) - 1)
        image = self.test_images[index: index + 1]
        for run in self.runs.values():
            run.model.eval()
        resnet = torch.stack(self.runs["resnet"].model.hidden_states(image))[:, 0]  # (L+1, C, s, s)
        odenet = self.runs["odenet"].model
        times = torch.as_tensor(ODE_IMAGE_TIMES, dtype=image.dtype)
        ode = solve(odenet.field, odenet.stem(image), times, solver=self.display_solver(), token=token)[0][:, 0]
        predictions = {
            key: int(self._forward(key, self.runs[key].model, image, token)[0].argmax(1))
            for key in MODELS if key in self.models
        }
        resnet_channels, ode_channels = _most_changing(resnet), _most_changing(ode)
        depth = len(resnet) - 1
        return HiddenStates(
            index=index,
            digit=image[0, 0].cpu().numpy(),
            label=int(self.test_labels[index]),
            predictions=predictions,
            resnet_depths=np.arange(depth + 1) / depth,
            resnet_channels=resnet_channels,
            resnet_states=resnet[:, resnet_channels].cpu().numpy(),
            ode_times=ODE_IMAGE_TIMES.copy(),
            ode_channels=ode_channels,
            ode_states=ode[:, ode_channels].cpu().numpy(),
        )


def _most_changing(states: torch.Tensor, count: int = HIDDEN_CHANNELS) -> np.ndarray:
    """The channels whose feature map moves most from the first state to the last, largest first."""
    change = (states[-1] - states[0]).flatten(1).norm(dim=1)
    return torch.argsort(change, descending=True)[:count].cpu().numpy()
