"""`deferred_interrupt`: a Ctrl-C inside the block lets the block finish, then stops the caller."""

from __future__ import annotations

import os
import signal

import pytest
from nemo_rl.trainers.interrupt import deferred_interrupt


def test_a_sigint_inside_the_block_is_raised_after_it():
    handler = signal.getsignal(signal.SIGINT)
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, delivered to this (main) thread
            finished.append("write")  # the interrupted work still completes
    assert finished == ["write"]
    assert signal.getsignal(signal.SIGINT) is handler  # the previous handler is back


def test_no_signal_no_interrupt_and_errors_pass_through():
    with deferred_interrupt():
        pass
    with pytest.raises(ValueError), deferred_interrupt():
        raise ValueError("a failing save still fails")
