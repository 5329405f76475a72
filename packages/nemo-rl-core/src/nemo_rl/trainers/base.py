"""BaseTrainer: the one training loop every algorithm shares.

It owns everything algorithms have in common: seeding, the run directory, logging, the cluster and
the policy backend, data loading with an exact-resume sampler, validation cadence, checkpoints
(keep-top-k, atomic) and resume, progress display and callbacks. An algorithm subclass defines
only what a step and a validation pass do (`training_step`, `validation_step`) and, if it needs
more than the policy, `setup_algorithm`.

Example:
    >>> from nemo_rl import SFTTrainer
    >>> trainer = SFTTrainer.from_pretrained("/models/tiny", max_num_steps=20)  # doctest: +SKIP
    >>> result = trainer.fit(dataset="train.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch

from nemo_rl import registry
from nemo_rl.config import AlgorithmConfig
from nemo_rl.config.schema import dump_config
from nemo_rl.infra.resources import ResourceError, check_resources, describe_plan
from nemo_rl.trainers.callbacks import Callback, CallbackList
from nemo_rl.trainers.interrupt import TrainingInterrupted, deferred_interrupt, interrupt_message
from nemo_rl.trainers.nonfinite import NonFiniteStepGuard
from nemo_rl.trainers.preflight import preflight
from nemo_rl.trainers.progress import RunProgress
from nemo_rl.trainers.result import FitResult, write_run_summary
from nemo_rl.trainers.run_dir import (
    checkpoint_metrics,
    claim_run_dir,
    describe_outputs,
    describe_paths,
    outside_run_dir,
    resolve_run_paths,
    resume_line,
)
from nemo_rl.trainers.run_header import (
    announce,
    describe_cluster_config,
    describe_device,
    describe_parameters,
)
from nemo_rl.trainers.state import (
    TrainerState,
    capture_rng_state,
    restore_rng_state,
    seed_everything,
)

log = logging.getLogger("nemo_rl")

STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "config.yaml"


class BaseTrainer:
    """The shared loop. Subclasses set `config_class` and implement the step hooks."""

    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig

    def __init__(
        self,
        config: AlgorithmConfig | dict | str | Path,
        overrides: Sequence[str] | dict[str, Any] | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: bool | None = None,
    ) -> None:
        from nemo_rl.config import load_config

        if isinstance(config, self.config_class) and not overrides:
            self.config = config.model_copy(deep=True)  # setup fills in paths: not the caller's
        else:
            if isinstance(config, dict) and "algorithm" not in config:
                config = {"algorithm": self.config_class.model_fields["algorithm"].default, **config}
            self.config = load_config(config, overrides)
        if not isinstance(self.config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got a "
                f"{type(self.config).__name__} (algorithm {self.config.algorithm!r}); use the "
                f"trainer of that algorithm or set algorithm: {self.algorithm_name}"
            )
        self.paths = resolve_run_paths(self.config, run_dir, resume)
        self.run_dir = self.paths.run_dir
        self.state = TrainerState()
        self.callbacks = CallbackList()
        self.policy: Any = None
        self.tokenizer: Any = None
        self.logger: Any = None
        self.checkpoints: Any = None
        self.cluster: Any = None
        self.progress: RunProgress | None = None
        self.header: list[str] = []  # run directory, device, resume: printed when fit starts
        self._resumed_metrics: dict[str, float] = {}
        self._stop_reason = ""
        self._is_setup = False
        # The command that resumes this run, without its RUN_DIR (the CLI sets it), for the
        # message on Ctrl-C; None names the API arguments instead.
        self.resume_command: list[str] | None = None

    # ----------------------------------------------------------------- construction helpers
    @property
    def algorithm_name(self) -> str:
        return str(self.config_class.model_fields["algorithm"].default)

    @classmethod
    def from_pretrained(cls, model_name_or_path: str | Path, **overrides: Any) -> BaseTrainer:
        """A trainer for `model_name_or_path` (a local directory or a hub name) with defaults.

        Flat keyword arguments set fields of the algorithm config (`num_prompts_per_step=8`);
        dotted names passed as `**{"policy.optimizer.lr": 1e-6}` reach nested ones. Each run
        writes to a fresh `runs/<algorithm>-<timestamp>` unless `run_dir=` names one;
        `resume=True` continues the latest checkpoint there (or of the newest such run).

        Example:
            >>> GRPOTrainer.from_pretrained("/models/tiny", num_prompts_per_step=8)  # doctest: +SKIP
        """
        run_dir, resume = overrides.pop("run_dir", None), overrides.pop("resume", None)
        values = {"policy.model_name": str(model_name_or_path), **overrides}
        base = {"algorithm": cls.config_class.model_fields["algorithm"].default}
        return cls(base, values, run_dir=run_dir, resume=resume)

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after the current step (callbacks use this)."""
        self._stop_reason = reason

    # ----------------------------------------------------------------------- hooks
    @property
    def rows_per_step(self) -> int:
        """Dataset rows consumed by one step (prompts for GRPO, sequences or pairs otherwise)."""
        raise NotImplementedError

    def setup_algorithm(self) -> None:
        """Build what the algorithm needs beyond the policy (generation, environment, losses)."""

    def build_transform(self) -> Any:
        """The callable turning dataset rows into the algorithm's batch (needs `self.tokenizer`)."""
        raise NotImplementedError

    def plugin_summary(self) -> list[str]:
        """Lines naming the plugins this run resolves (printed by --dry-run)."""
        backend = registry.resolve("training_backends", self.config.policy.backend)
        return [f"training backend: {self.config.policy.backend} ({backend.__module__}.{backend.__qualname__})"]

    def training_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        raise NotImplementedError

    def validation_step(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """Metrics over a chunk of validation rows; BaseTrainer averages them weighted by rows."""
        return {}

    def describe_batches(self) -> list[str]:
        """Lines explaining the batch arithmetic, printed at start and by --dry-run."""
        p = self.config.policy
        gbs = p.train_global_batch_size or "all"
        micro = (
            f"{p.max_tokens_per_microbatch} tokens (dynamic)"
            if p.max_tokens_per_microbatch
            else f"{p.train_micro_batch_size} sequences"
        )
        return [f"optimizer batch: {gbs} sequences; micro-batch: {micro}"]

    # ----------------------------------------------------------------------- setup
    def dry_run(self, dataset: Any = None, val_dataset: Any = None) -> list[str]:
        """Validate everything a run needs without training: plugins, tokenizer, data, the first
        batch; returns the report lines (batch arithmetic included)."""
        from nemo_rl.data import DataModule
        from nemo_rl.data.tokenizer import load_tokenizer

        # Everything the run needs, all problems at once, before the tokenizer or data load.
        checks = preflight(self.config, dataset, val_dataset)
        try:
            plan = check_resources(self.config)
        except ResourceError as err:  # an impossible GPU split is one of the problems listed
            checks.problems.insert(0, str(err))
        checks.raise_if_problems()
        lines = [f"config: valid {self.algorithm_name} config", *self.plugin_summary(), *checks.lines]
        lines += [describe_cluster_config(self.config.cluster), *describe_plan(plan)]
        lines.append(describe_paths(self.paths))
        self._load_data(DataModule, dataset, val_dataset)
        lines.append(f"data: {len(self.data.train_rows)} train rows, {len(self.data.val_rows or [])} validation rows")
        self.tokenizer = load_tokenizer(self.config.policy)
        lines.append(f"tokenizer: {self.config.policy.tokenizer_name} (vocab {len(self.tokenizer)})")
        batch = self.build_transform()(self.data.train_rows[: self.rows_per_step])
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in batch.items() if hasattr(v, "shape"))
        lines.append(f"first batch: {shapes}")
        lines.extend(self.describe_batches())
        if self.config.cluster.launcher == "ray":
            from nemo_rl.infra.cluster.ray_runtime import describe_ray_launch

            lines.append(describe_ray_launch(self.config.cluster.ray_address))
        lines.append(f"steps: {self.total_steps()} (max_num_steps {self.config.max_num_steps}, max_num_epochs {self.config.max_num_epochs})")
        return lines

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a phase of the step: shown in the progress bar, timed in the debug log."""
        if self.progress is not None:
            self.progress.phase(name)
        started = time.perf_counter()
        log.debug("%s: start", name)
        yield
        log.debug("%s: done in %.3f s", name, time.perf_counter() - started)

    def setup(self, dataset: Any = None, val_dataset: Any = None) -> None:
        """Load data, tokenizer, cluster and backends; resume from the latest checkpoint."""
        from nemo_rl.data import DataModule, ResumableSampler
        from nemo_rl.data.tokenizer import load_tokenizer
        from nemo_rl.infra import CheckpointManager, Logger, make_cluster
        from nemo_rl.infra.checkpoint import read_checkpoint_info
        from nemo_rl.infra.logging.jsonl import drop_metrics_after
        from nemo_rl.infra.placement import training_cluster_config

        cfg = self.config
        seed_everything(cfg.seed)
        plan = check_resources(cfg)  # an impossible GPU split fails before any model loads
        # A missing plugin or logger package fails here, not after the policy has loaded.
        preflight(cfg, check_sources=False).raise_if_problems()
        self._load_data(DataModule, dataset, val_dataset)  # before anything is written
        self.paths = claim_run_dir(self.paths, self.algorithm_name)
        self.run_dir = self.paths.run_dir
        cfg.run_dir, cfg.checkpointing.checkpoint_dir = str(self.run_dir), str(self.paths.checkpoint_dir)
        with self.phase("setup: tokenizer"):
            self.tokenizer = load_tokenizer(cfg.policy)
        self._fill_schedule_length()
        with self.phase("setup: policy"):
            # Separate generation GPUs: the training workers take only the training GPUs.
            self.cluster = make_cluster(training_cluster_config(cfg.cluster, plan))
            backend_cls = registry.resolve("training_backends", cfg.policy.backend)
            self.policy = backend_cls()
            self.policy.setup(cfg.policy, self.cluster)
        with self.phase("setup: algorithm"):
            self.transform = self.build_transform()
            self.setup_algorithm()
        self.sampler = ResumableSampler(
            len(self.data.train_rows), self.rows_per_step, shuffle=cfg.data.shuffle, seed=cfg.seed
        )
        self.checkpoints = CheckpointManager(cfg.checkpointing) if cfg.checkpointing.enabled else None
        latest = self.checkpoints.latest() if self.checkpoints is not None else None
        if latest is not None and self.paths.resume:
            # The steps after the checkpoint run again: their old records go, so that
            # metrics.jsonl holds each step once (before the logger opens it for appending).
            drop_metrics_after(self.run_dir, read_checkpoint_info(latest).step)
        self.logger = Logger(cfg.logger, self.run_dir)
        self.logger.log_hyperparams(cfg.model_dump(mode="json"))
        (self.run_dir / CONFIG_FILE).write_text(dump_config(cfg))
        self.header = [f"run directory: {self.run_dir}", describe_device(self.cluster)]
        if latest is not None and self.paths.resume:
            self.load_checkpoint(latest)
            self._resumed_metrics = checkpoint_metrics(latest)
        self.header.append(resume_line(self.paths, latest, self.state.step))
        self.header.append(describe_parameters(self.policy, cfg.policy.lora))
        self._is_setup = True

    @property
    def sequences_per_step(self) -> int:
        """Sequences one step trains on (times the passes over them), for the LR schedule."""
        return self.rows_per_step

    def _fill_schedule_length(self) -> None:
        """A decaying LR schedule needs its length: the run's optimizer updates, unless given."""
        sched = self.config.policy.scheduler
        if sched.name == "constant" or sched.total_steps is not None:
            return
        steps = self.total_steps()
        gbs = self.config.policy.train_global_batch_size
        updates = steps * (1 if gbs is None else max(1, self.sequences_per_step // gbs))
        sched.total_steps = max(1, updates)

    def _load_data(self, datamodule_cls: Any, dataset: Any, val_dataset: Any) -> None:
        """Load and check the data: the columns the algorithm reads, and at least one step's rows."""
        self.data = self._build_datamodule(datamodule_cls, dataset, val_dataset)
        # Columns left at their defaults follow the rows' shape (messages, TRL prompt/completion).
        self.config.data = self.data.detect_columns(self.algorithm_name, self.config.data)
        self.data.validate_columns(self.required_data_columns())
        rows = len(self.data.train_rows)
        if rows < self.rows_per_step:
            raise ValueError(
                f"the training data has {rows} rows, fewer than one {self.algorithm_name} step "
                f"consumes ({self.rows_per_step}); add data or lower the rows per step "
                f"({self.rows_per_step_field} in the config)"
            )

    @property
    def rows_per_step_field(self) -> str:
        """The config field that sets `rows_per_step` (named in errors)."""
        return "batch_size"

    def _build_datamodule(self, datamodule_cls: Any, dataset: Any, val_dataset: Any) -> Any:
        d = self.config.data
        train = dataset if dataset is not None else d.dataset
        if train is None:
            raise ValueError(
                "no training data: pass fit(dataset=...) (a path, a list of dicts, a "
                "datasets.Dataset or a dataset name) or set data.dataset in the config"
            )
        return datamodule_cls(
            train,
            val_dataset if val_dataset is not None else d.val_dataset,
            prompt_key=d.prompt_key,
            answer_key=d.answer_key,
            messages_key=d.messages_key,
            chosen_key=d.chosen_key,
            rejected_key=d.rejected_key,
            system_prompt=d.system_prompt,
            prompt_template=d.prompt_template,
            split=d.split,
            val_split=d.val_split,
            max_val_samples=self.config.max_val_samples,
        )

    def required_data_columns(self) -> list[str]:
        """Columns every dataset row needs; the algorithm's data transform knows them."""
        return self.build_transform().required_columns()

    # ----------------------------------------------------------------------- the loop
    def fit(
        self,
        dataset: Any = None,
        val_dataset: Any = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> FitResult:
        """Train until `max_num_steps` or `max_num_epochs`; returns a `FitResult`.

        On Ctrl-C it prints the last usable checkpoint and how to resume, and raises
        `TrainingInterrupted` (a KeyboardInterrupt) carrying them.
        """
        try:
            return self._fit(dataset, val_dataset, callbacks)
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:
            raise self._interrupted() from None

    def _interrupted(self) -> TrainingInterrupted:
        """Close what the run opened, say where it can resume, and build the exception."""
        from nemo_rl.infra.checkpoint import CheckpointManager, read_checkpoint_info

        self.progress = None
        manager, ckpt = self.checkpoints, self.config.checkpointing
        if manager is None and ckpt.enabled and self.paths.checkpoint_dir.is_dir():
            # Stopped while setting up: a run asked to resume still has its old checkpoints.
            where = {"checkpoint_dir": str(self.paths.checkpoint_dir)}
            manager = CheckpointManager(ckpt.model_copy(update=where))
        latest = manager.latest() if manager is not None else None
        step = read_checkpoint_info(latest).step if latest is not None else None
        run_dir = self.run_dir if self._is_setup or latest is not None else None
        if self._is_setup:  # the run directory stays complete: metrics, result.json, curves
            result = FitResult({}, latest, run_dir, self.state.step, stop_reason="interrupted")
            self._finish(result)
        total = self.total_steps() if self._is_setup else None
        message = interrupt_message(
            self.state.step, total, run_dir, latest, step, self.resume_command,
            checkpointing=ckpt.enabled,
        )
        announce(message)
        return TrainingInterrupted(
            message, step=self.state.step, run_dir=run_dir, checkpoint=latest, checkpoint_step=step
        )

    def _fit(
        self, dataset: Any, val_dataset: Any, callbacks: Sequence[Callback] | None
    ) -> FitResult:
        self.callbacks = CallbackList(list(callbacks or []))
        self._nonfinite = NonFiniteStepGuard(self.config.max_nonfinite_steps)
        if not self._is_setup:
            self.setup(dataset, val_dataset)
        cfg = self.config
        total = self.total_steps()
        history: list[dict[str, float]] = []
        # A resumed run with nothing left to do reports the final metrics it resumed, never {}.
        metrics: dict[str, float] = dict(self._resumed_metrics)
        self.callbacks.on_fit_start(self)
        with RunProgress(total, start_step=self.state.step) as progress:
            self.progress = progress
            # Where it writes, what it runs on and the batch arithmetic (the first thing users
            # get wrong): always shown.
            outside = outside_run_dir(cfg, self.run_dir)
            for line in [*self.header, *outside, *self.describe_batches(), f"steps: {total}"]:
                if line:
                    announce(line, progress.console if progress.enabled else None)
            if cfg.val_at_start and self.state.step == 0 and self.data.val_rows:
                self._log(self.validate(), self.state.step)
            while self.state.step < total and not self._stop_reason:
                self.callbacks.on_step_start(self, self.state.step)
                started = time.perf_counter()
                rows = self.next_rows()
                metrics = self.training_step(rows)
                self.state.step += 1
                skipped = self._nonfinite.check(self.state.step, metrics)
                if skipped:
                    log.warning(skipped)
                metrics["time/step_s"] = time.perf_counter() - started
                if cfg.val_period and self.state.step % cfg.val_period == 0:
                    metrics.update(self.validate())
                elif cfg.val_at_end and self.state.step == total and self.data.val_rows:
                    metrics.update(self.validate())
                self._log(metrics, self.state.step)
                history.append(metrics)
                progress.advance(metrics)
                self.callbacks.on_step_end(self, metrics)
                if self.checkpoints is not None and (
                    self.checkpoints.should_save(self.state.step) or self.state.step == total
                ):
                    self.save_checkpoint(metrics)
        self.progress = None
        result = FitResult(
            metrics=metrics,
            checkpoint_path=self.checkpoints.latest() if self.checkpoints is not None else None,
            run_dir=self.run_dir,
            steps=self.state.step,
            history=history,
            stop_reason=self._stop_reason or "finished",
        )
        self._finish(result)
        announce(describe_outputs(self.run_dir, result.checkpoint_path))
        self.callbacks.on_fit_end(self, result)
        return result

    def total_steps(self) -> int:
        """Steps of the run: `max_num_steps`, or fewer when `max_num_epochs` passes end first."""
        cfg = self.config
        steps_per_epoch = len(self.data.train_rows) // self.rows_per_step  # the sampler drops the rest
        return min(cfg.max_num_steps, cfg.max_num_epochs * steps_per_epoch)

    def next_rows(self) -> list[dict[str, Any]]:
        """The next step's rows from the resumable sampler (algorithms may draw more)."""
        indices = next(self.sampler)
        self.state.consumed_rows += len(indices)
        return [self.data.train_rows[i] for i in indices]

    def validate(self) -> dict[str, float]:
        """Run `validation_step` over the validation rows; returns `val/`-prefixed means."""
        rows = self.data.val_rows
        if not rows:
            return {}
        chunk = self.config.val_batch_size or self.rows_per_step
        totals: dict[str, float] = {}
        with self.phase("validate"):
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                for key, value in self.validation_step(part).items():
                    totals[key] = totals.get(key, 0.0) + value * len(part)
        metrics = {f"val/{k}": v / len(rows) for k, v in totals.items()}
        self.callbacks.on_validation_end(self, metrics)
        return metrics

    def _log(self, metrics: dict[str, float], step: int) -> None:
        if self.logger is not None and metrics:
            self.logger.log_metrics(metrics, step)

    # ------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, metrics: dict[str, float]) -> Path:
        """Write the policy, the trainer state and the config as one atomic step directory."""
        self.state.sampler = self.sampler.state_dict()
        state = {"trainer": self.state.to_dict(), "rng": capture_rng_state(), "algorithm": self.algorithm_state()}
        # A Ctrl-C during the write waits for it to finish (see deferred_interrupt).
        with self.phase("checkpoint"), deferred_interrupt(), self.checkpoints.save(self.state.step, metrics) as tmp:
            tmp = Path(tmp)
            self.policy.save_checkpoint(tmp)
            torch.save(state, tmp / STATE_FILE)
            (tmp / CONFIG_FILE).write_text(dump_config(self.config))
        path = self.checkpoints.latest()
        self.callbacks.on_checkpoint(self, path)
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore the policy, data position, RNG and algorithm state from a step directory."""
        self.policy.load_checkpoint(Path(path))
        state = torch.load(Path(path) / STATE_FILE, weights_only=False)
        self.state = TrainerState.from_dict(state["trainer"])
        self.sampler.load_state_dict(self.state.sampler)
        restore_rng_state(state["rng"])
        self.load_algorithm_state(state.get("algorithm", {}))

    def algorithm_state(self) -> dict[str, Any]:
        """Extra state an algorithm must checkpoint (e.g. the generation backend's RNG)."""
        return {}

    def load_algorithm_state(self, state: dict[str, Any]) -> None: ...

    def _finish(self, result: FitResult) -> None:
        if self.logger is not None:
            self.logger.close()
        write_run_summary(result)

    def close(self) -> None:
        """Shut workers down (also done at interpreter exit)."""
        if self.cluster is not None:
            self.cluster.shutdown()

