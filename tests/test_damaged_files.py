"""Issue 12: a damaged config.json, history.json, optimizer.json or data.json is one line and exit
code 2 from every command that reads it, never a traceback; `aekit info` reads what `load` reads
after an interrupted save; a closed pipe is not an error message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from aekit.cli import main
from aekit.io import sha256_file

FAST = ["--latent", "2", "--hidden", "8", "--epochs", "2", "--seed", "0", "-q", "--no-plots"]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    np.save(root / "x.npy", X)
    assert main(["train", "ae", "--data", str(root / "x.npy"), *FAST, "--out",
                 str(root / "run")]) == 0  # fmt: skip
    return root / "run"


def _reseal(folder, name):
    """Record the edited file's checksum, as if aekit had saved it: what is tested is the
    content check, not the checksum (which catches an unsealed edit first)."""
    config = json.loads((folder / "config.json").read_text())
    config["checksums"][name] = sha256_file(folder / name)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_json(name, change):
    def damage(folder):
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(change(data)))

    return damage


def _write(name, content: bytes):
    def damage(folder):
        (folder / name).write_bytes(content)

    return damage


def _set(path, value):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return data

    return change


DEEP = b"[" * 100_000 + b"]" * 100_000

DAMAGES = {
    "config null": _write("config.json", b"null"),
    "config a list": _write("config.json", b"[1, 2]"),
    "config not utf-8": _write("config.json", b'{"format": "\xff\xfe"}'),
    "config nested too deep": _write("config.json", DEEP),
    "config params a list": _edit_json("config.json", _set(["params"], [1])),
    "config fitted null": _edit_json("config.json", _set(["fitted"], None)),
    "config latent_dim a string": _edit_json("config.json", _set(["params", "latent_dim"], "2")),
    "config n_features_in_ a string": _edit_json(
        "config.json", _set(["fitted", "n_features_in_"], "five")
    ),
    "config checksums a list": _edit_json("config.json", _set(["checksums"], [])),
    "config loss_ unknown": _edit_json("config.json", _set(["fitted", "loss_"], "huber")),
    "history a list": "history.json",
    "history not utf-8": "history.json",
    "data null": "data.json",
    "data spec a string": "data.json",
    "data n_features a string": "data.json",
    "optimizer state a list": "optimizer.json",
}
SEALED = {  # damages to a checksummed file, resealed so that the content check is what answers
    "history a list": lambda f: (f / "history.json").write_text("[]"),
    "history not utf-8": lambda f: (f / "history.json").write_bytes(b"\xff{}"),
    "data null": lambda f: (f / "data.json").write_text("null"),
    "data spec a string": _edit_json("data.json", _set(["spec"], "x.npy")),
    "data n_features a string": _edit_json("data.json", _set(["n_features"], "5")),
    "optimizer state a list": _edit_json("optimizer.json", _set(["state"], [])),
}

# Well-formed JSON whose values do not fit the model: `aekit info` describes them as they are
# (it builds no model); every command that builds the model refuses them.
DESCRIBED = {"config latent_dim a string", "config loss_ unknown", "config n_features_in_ a string",
             "optimizer state a list"}  # fmt: skip

COMMANDS = {
    "info": lambda run, tmp: ["info", run],
    "encode": lambda run, tmp: ["encode", run, "--out", tmp / "c.npy"],
    "evaluate": lambda run, tmp: ["evaluate", run],
    "resume": lambda run, tmp: [
        "train",
        "--resume",
        "--out",
        run,
        "--epochs",
        "3",
        "-q",
        "--no-plots",
    ],
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_file_is_one_line_and_exit_2(good_run, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    if damage in SEALED:
        SEALED[damage](run)
        _reseal(run, DAMAGES[damage])
    else:
        DAMAGES[damage](run)
    for name, argv in COMMANDS.items():
        if name == "info" and damage in DESCRIBED:
            continue  # info shows the files as they are; commands that build the model refuse
        code = main([str(a) for a in argv(run, tmp_path)])
        _, err = capsys.readouterr()
        assert code == 2, (name, damage, err)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("aekit: error: ") and "Traceback" not in err, (name, err)
        assert str(run) in lines[-1], (name, lines[-1])  # names the file


def test_info_reads_the_save_that_load_recovers_after_an_interrupted_save(good_run, tmp_path,
                                                                         capsys):  # fmt: skip
    """Killed after config.json was moved aside: load takes the previous generation, and so
    does info (it read config.json and failed)."""
    import aekit

    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    (run / "config.json").rename(run / "config.json.prev")
    model = aekit.load(run)
    assert main(["info", str(run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class"] == "Autoencoder"
    assert info["fitted"]["n_epochs_"] == model.n_epochs_ == 2


def test_a_closed_pipe_is_not_an_error(good_run):
    """`aekit info RUN | true`: the reader is gone before aekit writes; no 'Broken pipe'
    message, no traceback (the exit code is 141, 128 + SIGPIPE, as for other tools)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aekit", "info", str(good_run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader closes its end at once
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait() in (0, 141), err
    assert "Broken pipe" not in err and "Traceback" not in err, err
