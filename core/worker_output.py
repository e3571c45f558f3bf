"""What a job's Ray workers print: our own lines (``[train] ...``, errors) and the libraries' real warnings,
not their routine chatter, which Ray forwards to the driver line by line (pages of it on a short training run).
Installed in every worker process of a job through Ray's ``worker_process_setup_hook`` (``core.ray_runtime``)."""
from __future__ import annotations

import logging
import os
import threading
import warnings

# Ray Train's placement-group cleaner asks the state API (the dashboard) every second whether the train controller
# lives. A local Ray started without a dashboard never answers: each miss is a warning line, and with another Ray on
# the machine its thread dies with a traceback ("Found multiple active Ray instances"). Neither is news to a user, and
# the job's placement groups are still removed with the job.
CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
CLEANER_THREAD = "PlacementGroupCleanerMonitor"
# deprecations inside the libraries' own calls (DeepSpeed's all-gather, Ray Data's execution options): nothing a user
# of a job can change
LIBRARY_DEPRECATIONS = [r"`torch\.distributed\.all_gather_into_tensor` is deprecated",
                        r"`ExecutionOptions\.exclude_resources` is deprecated"]


def quiet_routine_output() -> None:
    """Run in each worker process before its first task. A variable the job's environment sets wins."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # a tqdm bar per model load ("Loading weights")
    # Ray Train's print patch hands each print of a train worker to the root logger and, as Ray wraps stdout,
    # prints it too: every line twice in the driver's output. Plain prints reach the driver once.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    for message in LIBRARY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger(CLEANER_LOGGER).setLevel(logging.ERROR)
    report = threading.excepthook

    def quiet_cleaner_thread(args) -> None:
        if args.thread is None or args.thread.name != CLEANER_THREAD:
            report(args)

    threading.excepthook = quiet_cleaner_thread
