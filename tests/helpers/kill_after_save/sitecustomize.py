"""A fault for tests/test_resume.py, loaded by Python at start-up when this folder is on
PYTHONPATH: once the run whose Trainer folder is $SEMILLERO_TEST_KILL_AFTER_SAVE has saved its
first checkpoint (every callback's on_save done, so the checkpoint is complete), the whole
process group is SIGKILLed, as a power cut or an OOM killer would. Killing from inside, at a
known point, replaces polling the disk from the test, which lost the race on a loaded machine."""

import os
import signal

_FOLDER = os.environ.get("SEMILLERO_TEST_KILL_AFTER_SAVE")

if _FOLDER:
    from transformers.trainer_callback import CallbackHandler

    _on_save = CallbackHandler.on_save

    def _on_save_then_die(self, args, state, control):  # type: ignore[no-untyped-def]
        control = _on_save(self, args, state, control)
        if os.path.realpath(args.output_dir) == os.path.realpath(_FOLDER):
            os.killpg(os.getpgrp(), signal.SIGKILL)
        return control

    CallbackHandler.on_save = _on_save_then_die
