"""An Axolotl plugin (loaded inside Axolotl's venv, never by semillero): every Trainer log
(losses, eval, the final train summary) goes to <output_dir>/semillero_log.jsonl, one JSON
object a line, which semillero reads back into the run record and W&B. Axolotl's own
outputs hold no such history: its checkpoints stop before the final summary is logged.

The rendered YAML names it `plugins: [semillero_axolotl.LogPlugin]`; semillero puts this
folder on PYTHONPATH when it calls Axolotl.
"""

from __future__ import annotations

import json
import os
from typing import Any

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

LOG_FILE = "semillero_log.jsonl"


class JsonlLogCallback(TrainerCallback):
    def __init__(self, path: str) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch, **logs}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=float) + "\n")


class LogPlugin(BasePlugin):
    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        os.makedirs(cfg.output_dir, exist_ok=True)
        return [JsonlLogCallback(os.path.join(cfg.output_dir, LOG_FILE))]
