"""``bsnn``: the console command, a thin LightningCLI.

    bsnn fit --config recipes/quickstart.yaml
    bsnn fit --config recipes/quickstart.yaml --ckpt_path last   # resume an interrupted run
    bsnn test --config recipes/quickstart.yaml --ckpt_path runs/quickstart/checkpoints/last.ckpt
    bsnn fit --config recipes/quickstart.yaml --print_config
    bsnn report OUT_DIR [--quick]        # the papers' claims measured on the embedded digits

Recipes are YAML with ``class_path``/``init_args`` for the model (any LightningModule), the data (any
LightningDataModule) and the callbacks. After ``fit``, the test split is evaluated and its metrics printed
(``--test_after_fit false`` to skip).
"""

from __future__ import annotations

import sys

import lightning as L
from lightning.pytorch.cli import LightningCLI


class BsnnCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True, help="evaluate the test split after fit")

    def after_fit(self) -> None:
        cfg = self.config.get(self.subcommand, self.config)
        if cfg.get("test_after_fit", True) and not self.trainer.fast_dev_run and self.trainer.state.finished:
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=True)
        # each checkpoint callback's file (the recipes: the best epoch's, and the last epoch's)
        paths = [getattr(c, name, "") for c in self.trainer.checkpoint_callbacks for name in ("best_model_path", "last_model_path")]
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
        args=args,
    )


def main(args: list[str] | None = None) -> int:
    """The ``bsnn`` console command: 0 on success (errors raise, or exit non-zero from the parser).

    ``bsnn report ...`` runs :mod:`bsnn_lightning.report` (not a LightningCLI subcommand: it trains many
    models with its own settings); everything else goes to LightningCLI.
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["report"]:
        from .report import main as report_main

        return report_main(argv[1:])
    build_cli(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
