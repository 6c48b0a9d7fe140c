"""Keeping TensorFlow's start-up log lines out of the command's output.

TensorFlow writes its C++ log lines straight to file descriptor 2. Since it
moved to absl logging, the lines it writes while loading its libraries (oneDNN,
CUDA drivers, CPU features) come before absl is set up, and
`TF_CPP_MIN_LOG_LEVEL` does not reach them. So the command line sets that
variable (for everything logged later) and, while TensorFlow and Keras load and
find their devices, sends file descriptor 2 to a temporary file; afterwards it
passes on every captured line that is not one of TensorFlow's, so genuine
messages are never lost.

Nothing here imports TensorFlow at import time: this module runs first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["filtered_stderr", "is_tensorflow_log_line", "quiet_tensorflow"]

#: The variable through which a user chooses TensorFlow's C++ log level.
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"

_TENSORFLOW_LOG_LINE = re.compile(
    # absl and glog: "I0000 00:00:1795652411.972528 2732 port.cc:153] ..."
    r"^[IWEF]\d{4} "
    # TensorFlow before 2.18: "2024-03-10 12:34:56.789012: I tensorflow/..."
    r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "
    r"|^WARNING: All log messages before absl::InitializeLog\(\) is called"
    # the second line of cpu_feature_guard's message
    r"|^To enable the following instructions: "
)


def is_tensorflow_log_line(line: str) -> bool:
    """Return whether `line` is one of TensorFlow's or absl's C++ log lines."""
    return _TENSORFLOW_LOG_LINE.match(line) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Within the block, drop TensorFlow's log lines from file descriptor 2.

    What is written to file descriptor 2 (by C++ code or by Python) is held in
    a temporary file and written back to `sys.stderr` when the block ends,
    without the lines `is_tensorflow_log_line` recognises. Where file
    descriptor 2 cannot be redirected (it is closed), the block runs as is.

    Example:
        >>> with filtered_stderr():
        ...     import tensorflow
    """
    try:
        saved = os.dup(2)
    except OSError:
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        _flush_stderr()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines(True) if not is_tensorflow_log_line(line)]
            if kept and sys.stderr is not None:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_tensorflow() -> None:
    """Import TensorFlow and Keras without their start-up log lines.

    Unless the user has set `TF_CPP_MIN_LOG_LEVEL` (then TensorFlow logs as
    they asked), sets it to 3 (fatal errors only) before TensorFlow loads, and
    imports TensorFlow and Keras and lists the devices within
    `filtered_stderr`. TensorFlow's and absl's Python loggers are set to show
    errors only either way: each method compiles its own step, which
    TensorFlow reports as retracing after a few methods, noise for a one-shot
    command.

    Call it before anything imports TensorFlow.
    """
    if LOG_LEVEL_VARIABLE in os.environ:
        _load_tensorflow()
    else:
        if "tensorflow" not in sys.modules:
            # Read once, when TensorFlow loads; set later, it would only reach
            # the processes this one starts.
            os.environ[LOG_LEVEL_VARIABLE] = "3"
        with filtered_stderr():
            _load_tensorflow()
    import absl.logging
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    absl.logging.set_verbosity(absl.logging.ERROR)


def _load_tensorflow() -> None:
    """Import TensorFlow and Keras, and find the devices (when CUDA logs)."""
    import keras  # noqa: F401 - loads more of TensorFlow's libraries
    import tensorflow as tf

    tf.config.list_physical_devices()


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()
