"""The errors aekit raises on purpose.

Each one is a subclass of a built-in exception that callers already catch (``ValueError`` for bad
input, ``RuntimeError`` for a failure while running), so scikit-learn and plain Python code keep
working, and of :class:`AekitError`, so the command line can tell an expected, explained failure
(one line, no traceback) from a bug.
"""

from __future__ import annotations


class AekitError(Exception):
    """Base class of the errors aekit raises deliberately, with a message meant for a person."""


class ParameterError(AekitError, ValueError):
    """An estimator parameter has an invalid value: the message names it and the valid choices."""


class DataError(AekitError, ValueError):
    """The data cannot be used as given: the message names the file, row, column and the fix."""


class ModelFileError(AekitError, ValueError):
    """A saved model is missing, truncated, foreign, or from a newer aekit."""


class TrainingDivergedError(AekitError, RuntimeError):
    """The training loss became NaN or infinite.

    The model keeps the best weights seen before the failure, so it can still be used or saved.

    Attributes
    ----------
    epoch : int
        The epoch (1-based, counted over the model's whole life) in which the loss diverged.
    step : int
        The batch (1-based) within that epoch.
    lr : float
        The learning rate at that step.
    """

    def __init__(self, message: str, *, epoch: int, step: int, lr: float):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.lr = lr


class FolderError(AekitError, ValueError):
    """aekit refuses to write into a folder: it holds files aekit did not write, or it is a file.

    aekit writes only into a new or empty folder, or one it created (it holds aekit's manifest,
    ``aekit-manifest.json``), and deletes or replaces only the files that manifest lists.
    """


class FolderLockedError(AekitError, RuntimeError):
    """Another aekit process is writing into the folder (it holds the folder's lock)."""


class UntrustedCodeError(AekitError, ValueError):
    """A saved model names code to import (a user prior or network), and the caller did not opt
    in with ``trust_code=True`` or pass the objects; or what the name imports is not allowed."""


class ExportError(AekitError, RuntimeError):
    """A network could not be exported faithfully (:meth:`model.export`): an operation ONNX
    lacks, or a graph whose outputs in onnxruntime differ from PyTorch's, for example a batch
    size frozen by tracing."""
