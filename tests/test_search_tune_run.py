"""The Tune run's console: Tune's own output and its loggers' noise are off during a run."""

from __future__ import annotations

import logging
import os

from neonas.search.tune_run import quiet_tune


def test_quiet_tune_silences_tensorboard_nan_warnings_and_restores_after(caplog):
    # Rejected trials report -inf objectives on purpose; tensorboardX would warn for each.
    noisy = logging.getLogger("tensorboardX.x2num")
    before = noisy.level
    with caplog.at_level(logging.WARNING):
        with quiet_tune():
            noisy.warning("NaN or Inf found in input tensor.")
            assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        assert "NaN or Inf" not in caplog.text
        noisy.warning("after the run")
    assert "after the run" in caplog.text and noisy.level == before
