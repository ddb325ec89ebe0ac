"""The documentation says what the code does: docs/ARCHITECTURE.md's claims about the tests, the
module docstrings of the code that serves every family, and the Autoencoder's example."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import aekit
from aekit import metrics, plotting, report

from . import helpers

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md"


def test_no_sentence_of_the_architecture_is_written_twice():
    """A paragraph pasted twice (the input validation's was, once inside the estimator
    contract's paragraph and once on its own) shows as sentences that repeat."""
    text = " ".join(ARCHITECTURE.read_text().split())
    sentences = [s for s in re.split(r"(?<=[.:;])\s+", text) if len(s) > 60]
    repeated = sorted({s for s in sentences if sentences.count(s) > 1})
    assert not repeated, repeated


def test_the_architecture_describes_the_tests_as_they_are():
    """Its Tests section names the test configuration and battery modules, and every
    scikit-learn check expected to fail (two for every family, a third for classifiers)."""
    text = " ".join(ARCHITECTURE.read_text().split("## Tests", 1)[1].split())
    for name in ("tests/helpers.py", "tests/test_common.py", "tests/test_tags.py",
                 "tests/test_layers.py", "tests/test_damaged_files.py"):  # fmt: skip
        assert name in text, name
    assert len(helpers.EXPECTED_FAILED_CHECKS) == 2 and len(helpers.CLASSIFIER_EXPECTED) == 3
    for check in helpers.CLASSIFIER_EXPECTED:
        assert f"`{check}`" in text, check
    assert "one expected failure" not in text


def test_the_shared_modules_say_they_read_tags():
    """metrics, the report and the figures choose by tags: their docstrings say so."""
    for module in (metrics, report, plotting):
        doc = " ".join(module.__doc__.split())
        assert "duck typing" not in doc, module.__name__
        assert "tags" in doc, module.__name__


def test_the_autoencoder_example_runs_and_names_the_loss_it_scores():
    """The example fits digits (pixels in [0, 1], so loss="auto" chooses BCE): its comment on
    ``score`` must name that loss, not the squared error."""
    (test,) = [t for t in doctest.DocTestFinder().find(aekit.Autoencoder) if t.examples]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, clear_globs=False)
    assert runner.summarize(verbose=False).failed == 0
    words = {"bce": "binary cross-entropy", "mse": "squared error"}[test.globs["ae"].loss_]
    (score,) = [e.source for e in test.examples if e.source.startswith("ae.score(")]
    assert words in score.partition("#")[2], score
