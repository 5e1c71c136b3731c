"""``bsnn``: the console command, a thin LightningCLI.

    bsnn fit --config recipes/quickstart.yaml
    bsnn fit --config recipes/quickstart.yaml --ckpt_path last   # resume an interrupted run
    bsnn test --config recipes/quickstart.yaml --ckpt_path runs/quickstart/checkpoints/last.ckpt
    bsnn fit --config recipes/quickstart.yaml --print_config
    bsnn report OUT_DIR [--quick]        # the papers' claims measured on the embedded data

Recipes are YAML with ``class_path``/``init_args`` for the model (any LightningModule), the data (any
LightningDataModule) and the callbacks. After ``fit``, the test split is evaluated with the last weights and its
metrics printed (``--test_after_fit false`` to skip), then the best validation accuracy over the epochs and its
epoch (``val/acc_best`` of :class:`~bsnn_lightning.SpikingClassifier`): the DVS DataModules validate on their test
split, so that line is the figure the DVS papers and SpikingJelly's examples report, their best test accuracy
over epochs; ``test/acc`` is the last epoch's.

A known, expected condition (a dataset archive missing or wrong, a recipe that asks for a GPU where there is
none) ends the command with its message alone on stderr and exit status 1, without a traceback.
"""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator
from lightning.pytorch.cli import LightningCLI

from .data.archives import ArchiveError, DatasetNotFoundError
from .data.datasets import DatasetIncompleteError

OTHER_COMMANDS = (
    "Other commands: bsnn report OUT_DIR [--task digits|intervals|both] [--quick] measures the BSNN and IMP "
    "papers' claims on the embedded data (bsnn report --help)."
)


class NoGPUError(RuntimeError):
    """The run asks for a GPU and this machine has none.

    An expected condition: the ``bsnn`` command prints its message alone and exits with status 1 (:func:`main`).

    >>> issubclass(NoGPUError, RuntimeError), NoGPUError in EXPECTED_ERRORS
    (True, True)
    """


class BsnnCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True, help="evaluate the test split after fit")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        accelerator = config["trainer"].get("accelerator")
        if accelerator in ("gpu", "cuda") and not (CUDAAccelerator.is_available() or MPSAccelerator.is_available()):
            raise NoGPUError(
                f"this run asks for a GPU (trainer.accelerator: {accelerator}) and this machine has none. To try it "
                "on the CPU, override the trainer: --trainer.accelerator cpu --trainer.precision 32-true (and "
                "--trainer.fast_dev_run true for one training and one validation batch)"
            )

    def after_fit(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        if cfg.get("test_after_fit", True) and not self.trainer.fast_dev_run and self.trainer.state.finished:
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=True)
        best, epoch = getattr(self.model, "best_val_acc", None), getattr(self.model, "best_val_epoch", None)
        if best is not None and self.trainer.is_global_zero:
            print(f"best val/acc over epochs: {best:.4f} (epoch {epoch} of {self.trainer.current_epoch})")
        # each checkpoint callback's file (the recipes: the best epoch's, and the last epoch's)
        callbacks = self.trainer.checkpoint_callbacks
        paths = [getattr(c, name, "") for c in callbacks for name in ("best_model_path", "last_model_path")]
        if self.trainer.is_global_zero:
            for path in dict.fromkeys(p for p in paths if p):
                print(f"checkpoint: {path}")


def build_cli(args: list[str] | None = None) -> BsnnCLI:
    """Parse ``args`` (default: ``sys.argv``) and run the subcommand; returns the CLI (model, trainer, ...)."""
    return BsnnCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"epilog": OTHER_COMMANDS},
        args=args,
    )


#: known, expected conditions: their message says what to do, so ``bsnn`` prints it alone
EXPECTED_ERRORS = (DatasetNotFoundError, ArchiveError, DatasetIncompleteError, NoGPUError)


def main(args: list[str] | None = None) -> int:
    """The ``bsnn`` console command: 0 on success; 1 with the message alone for an :data:`EXPECTED_ERRORS`
    condition; other errors raise (with their traceback), and the parser exits non-zero on bad arguments.

    ``bsnn report ...`` runs :mod:`bsnn_lightning.report` (not a LightningCLI subcommand: it trains many
    models with its own settings); everything else goes to LightningCLI.

    >>> import contextlib, io
    >>> messages = io.StringIO()
    >>> with contextlib.redirect_stderr(messages):
    ...     main(["fit", "--trainer.max_epochs", "two"])
    Traceback (most recent call last):
        ...
    SystemExit: 2
    >>> print(messages.getvalue().split("error: ")[-1].splitlines()[0])  # the parser names the option
    Parser key "trainer.max_epochs":
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["report"]:
        from .report import main as report_main

        return report_main(argv[1:])
    try:
        build_cli(args)
    except EXPECTED_ERRORS as error:
        print(f"bsnn: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
