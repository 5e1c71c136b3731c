"""A Lightning callback for tests/test_resume.py: logs each training step's number and can interrupt the run.

``StepLog(path, interrupt_at=N)`` appends ``global_step`` to ``path`` (one line per training batch) and, at the
start of step N, sends this process a real SIGINT, as Ctrl-C in a terminal does (Lightning then shuts down
gracefully and exits with status 1).
"""

import os
import signal
from pathlib import Path

import lightning as L


class StepLog(L.Callback):
    def __init__(self, path: str, interrupt_at: int | None = None) -> None:
        self.path = Path(path)
        self.interrupt_at = interrupt_at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
            return
        with self.path.open("a") as f:
            f.write(f"{trainer.global_step}\n")
