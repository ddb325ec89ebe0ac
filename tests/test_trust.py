"""Issue 11: nothing read from a file is run, nothing of the user's is lost, folders are locked,
damaged files are refused. Each test here failed before the change it guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import aekit
from aekit import Autoencoder
from aekit.cli import main
from aekit.errors import FolderError, FolderLockedError, ModelFileError, UntrustedCodeError
from aekit.runs import STAGING
from tests.helpers import make_fitted

FAST = ["--latent", "2", "--hidden", "8", "--epochs", "2", "--seed", "0", "-q", "--no-plots"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def reseal(folder, name):
    """Record the edited file ``name``'s checksum in config.json, as a save of it would."""
    from aekit.io import sha256_file

    config = json.loads((folder / "config.json").read_text())
    config["checksums"][name] = sha256_file(folder / name)
    (folder / "config.json").write_text(json.dumps(config))


def edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


# --- 1. loading runs no code named in a file ---------------------------------------------------


@pytest.fixture
def prior_modules(tmp_path, monkeypatch):
    """Two importable modules on sys.path: a real prior, and one whose import leaves a mark."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "ringprior.py").write_text(
        textwrap.dedent("""
        import torch

        def ring(n, generator):
            angle = torch.rand(n, generator=generator, device=generator.device) * 6.283
            return torch.stack([angle.cos(), angle.sin()], 1) * 2
    """)
    )
    mark = tmp_path / "imported.txt"
    (mods / "evilmod.py").write_text(
        textwrap.dedent(f"""
        open({str(mark)!r}, "w").write("evilmod ran")

        def f(n, generator):
            raise SystemExit("called")
    """)
    )
    monkeypatch.syspath_prepend(str(mods))
    yield mods, mark
    for name in ("ringprior", "evilmod"):
        sys.modules.pop(name, None)


@pytest.fixture
def aae_with_user_prior(prior_modules, tmp_path):
    from aekit import AdversarialAutoencoder

    X = np.random.default_rng(0).random((60, 6), dtype=np.float32)
    model = AdversarialAutoencoder(prior="ringprior:ring", hidden=(8,), max_epochs=1,
                                   random_state=0).fit(X)  # fmt: skip
    model.save(tmp_path / "m")
    return tmp_path / "m", model, X


def test_load_refuses_to_import_a_prior_named_in_the_file(aae_with_user_prior, prior_modules):
    path, _, _ = aae_with_user_prior
    _, mark = prior_modules
    edit_config(path, lambda c: c["params"].update(prior="evilmod:f"))
    with pytest.raises(UntrustedCodeError, match=r"params.prior = 'evilmod:f'.*trust_code=True"):
        aekit.load(path)
    assert not mark.exists() and "evilmod" not in sys.modules


def test_load_imports_a_trusted_prior_or_takes_the_object(aae_with_user_prior):
    path, model, X = aae_with_user_prior
    with pytest.raises(UntrustedCodeError, match="ringprior:ring"):
        aekit.load(path)
    trusted = aekit.load(path, trust_code=True)
    assert np.array_equal(trusted.transform(X), model.transform(X))
    assert trusted.sample_prior(5, random_state=0).shape == (5, 2)
    import ringprior

    given = aekit.load(path, objects={"prior": ringprior.ring})
    assert given.prior is ringprior.ring
    assert np.array_equal(given.sample_prior(5, random_state=0), trusted.sample_prior(5, 0))


@pytest.mark.parametrize("name", ["os:system", "os.system", "subprocess:Popen", "sys:path"])
def test_trust_code_still_refuses_what_is_not_a_prior(aae_with_user_prior, name):
    path, _, _ = aae_with_user_prior
    edit_config(path, lambda c: c["params"].update(prior=name))
    with pytest.raises(UntrustedCodeError, match=r"refused.*takes a Python function"):
        aekit.load(path, trust_code=True)


def test_objects_and_classes_are_checked(aae_with_user_prior, fitted_ae, tmp_path):
    path, _, _ = aae_with_user_prior
    with pytest.raises(UntrustedCodeError, match="takes a Python function"):
        aekit.load(path, objects={"prior": print})
    with pytest.raises(ValueError, match="no code parameter 'decoder_hidden'"):
        aekit.load(path, objects={"decoder_hidden": print})
    with pytest.raises(ValueError, match="encoder is None, not user code; nothing to replace"):
        aekit.load(path, objects={"encoder": print})
    fitted_ae.save(tmp_path / "ae")
    with pytest.raises(ValueError, match="Autoencoder has no code parameter 'prior'"):
        aekit.load(tmp_path / "ae", objects={"prior": print})
    with pytest.raises(ValueError, match="not a subclass of aekit's estimators"):
        aekit.load(tmp_path / "ae", classes=[dict])


def test_cli_needs_trust_code_and_prints_no_zen(aae_with_user_prior, capsys, tmp_path):
    path, _, X = aae_with_user_prior
    np.save(tmp_path / "x.npy", X)
    edit_config(path, lambda c: c["params"].update(prior="this:s"))
    code, out, err = run(["encode", path, "--out", tmp_path / "z.npy"], capsys)
    assert code == 2 and "--trust-code" in err and "Beautiful" not in out + err
    code, _, err = run(
        ["train", "aae", "--data", tmp_path / "x.npy", *FAST, "--prior", "ringprior:ring",
         "--out", tmp_path / "new"], capsys,
    )  # fmt: skip
    assert code == 2 and "--trust-code" in err and not (tmp_path / "new").exists()
    code, _, err = run(
        ["train", "aae", "--data", tmp_path / "x.npy", *FAST, "--prior", "ringprior:ring",
         "--out", tmp_path / "new", "--trust-code"], capsys,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(["generate", tmp_path / "new", "--out", tmp_path / "s.npy"], capsys)
    assert code == 2 and "--trust-code" in err
    code, _, err = run(
        ["generate", tmp_path / "new", "--out", tmp_path / "s.npy", "--trust-code"], capsys
    )
    assert code == 0, err


class Autoencoder(aekit.Autoencoder):  # noqa: F811 (a notebook's own class, named as aekit's)
    """A notebook's subclass that shares a stock family's name."""


def test_a_local_class_named_as_a_family_never_stands_in_for_it(fitted_ae, tmp_path):
    fitted_ae.save(tmp_path / "stock")
    assert type(aekit.load(tmp_path / "stock")) is aekit.Autoencoder
    X = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    Autoencoder(hidden=(4,), max_epochs=1, random_state=0).fit(X).save(tmp_path / "mine")
    with pytest.raises(ModelFileError, match=r"'Autoencoder' from tests.test_trust, named like "
                                             r"aekit's own.*classes=\[Autoencoder\]"):  # fmt: skip
        aekit.load(tmp_path / "mine")
    assert type(aekit.load(tmp_path / "mine", classes=[Autoencoder])) is Autoencoder


# --- 2. user files are never deleted or overwritten ---------------------------------------------


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_train_refuses_a_folder_holding_someone_elses_files(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    for name in ("data.json", "history.json", "metrics.json", "latent.png", "notes.txt"):
        (user / name).write_text(f"the user's {name}")
    before = _snapshot(user)
    for extra in ([], ["--overwrite"]):
        argv = ["train", "ae", "--data", "digits", *FAST, "--out", user, *extra]
        code, _, err = run(argv, capsys)
        assert code == 2 and "did not write" in err
        assert _snapshot(user) == before
    # a foreign config.json beside an aekit-looking report.html is not aekit's either
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model": "not aekit"}')
    (other / "report.html").write_text("<p>mine</p>")
    before = _snapshot(other)
    code, _, err = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", other, "--overwrite"], capsys
    )
    assert code == 2 and "did not write" in err and _snapshot(other) == before


@pytest.mark.parametrize("flag_value", ["", "  "])
def test_empty_out_is_refused_and_the_current_folder_untouched(
    flag_value, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.html").write_text("mine")
    code, _, err = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", flag_value, "--overwrite"], capsys
    )
    assert code == 2 and "--out is empty" in err
    assert sorted(os.listdir(tmp_path)) == ["report.html"]


def test_model_save_refuses_a_foreign_folder_and_file(tmp_path):
    model, _ = make_fitted()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text("{}")
    with pytest.raises(FolderError, match="did not write"):
        model.save(tmp_path / "d")
    assert (tmp_path / "d" / "config.json").read_text() == "{}"
    model.save(tmp_path / "ok")
    (tmp_path / "ok" / "metrics.json").write_text("mine")  # put by the user into aekit's folder
    from aekit.io import claim

    with pytest.raises(FolderError, match=r"metrics\.json was not written by aekit"):
        claim(tmp_path / "ok", ["metrics.json"])
    model.save(tmp_path / "ok")  # aekit's own files are replaced; the user's file stays
    assert (tmp_path / "ok" / "metrics.json").read_text() == "mine"


def test_commands_never_write_over_their_input(digits_run_small, tmp_path, capsys):
    run_dir, X = digits_run_small
    csv = tmp_path / "f.csv"
    np.savetxt(csv, X[:5], delimiter=",")
    before = csv.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = run(["encode", run_dir, "--data", csv, "--out", csv, *extra], capsys)
        assert code == 2 and "one of this command's inputs" in err
        assert csv.read_bytes() == before
    code, _, err = run(["encode", run_dir, "--out", run_dir / "data.json", "--overwrite"], capsys)
    assert code == 2 and "one of this command's inputs" in err
    # an existing output file is replaced only with --overwrite
    (tmp_path / "z.csv").write_text("mine")
    code, _, err = run(["encode", run_dir, "--data", csv, "--out", tmp_path / "z.csv"], capsys)
    assert code == 2 and "already exists" in err and (tmp_path / "z.csv").read_text() == "mine"
    code, _, _ = run(
        ["encode", run_dir, "--data", csv, "--out", tmp_path / "z.csv", "--overwrite"], capsys
    )
    assert code == 0 and np.loadtxt(tmp_path / "z.csv", delimiter=",").shape == (5, 2)


@pytest.fixture
def digits_run_small(tmp_path):
    from aekit.datasets import load_dataset

    out = tmp_path / "run"
    assert main(["train", "ae", "--data", "digits", *FAST, "--out", str(out)]) == 0
    return out, load_dataset("digits", scale="none").X_train


def test_overwrite_keeps_the_users_files_and_removes_only_aekits(digits_run_small, capsys):
    run_dir, _ = digits_run_small
    (run_dir / "notes.txt").write_text("my notes on this run")
    assert main(["report", str(run_dir), "--threads", "1"]) == 0
    assert (run_dir / "report.html").exists()
    assert main(["encode", str(run_dir), "--out", str(run_dir / "codes.npy")]) == 0
    capsys.readouterr()
    code, out, err = run(["train", "ae", "--data", "digits", *FAST, "--latent", "3", "--out",
                          run_dir, "--overwrite", "--json"], capsys)  # fmt: skip
    assert code == 0, err
    assert (run_dir / "notes.txt").read_text() == "my notes on this run"
    assert "notes.txt" not in json.loads(out)["files"]  # not listed as written by aekit
    assert not (run_dir / "report.html").exists()  # aekit's, derived from the old model
    assert (run_dir / "codes.npy").exists()  # the user's requested output stays
    assert not (run_dir / "staging").exists()
    assert aekit.load(run_dir).latent_dim == 3


def test_a_run_folder_of_the_previous_version_is_adopted(digits_run_small, capsys):
    """Folders written before manifests and checksums: they load, and --overwrite may replace
    their (known) files."""
    run_dir, _ = digits_run_small
    (run_dir / "aekit-manifest.json").unlink()
    (run_dir / ".aekit.lock").unlink()
    (run_dir / "epochs.jsonl").unlink()  # and before epoch logs (issue 15)
    edit_config(run_dir, lambda c: [c.pop("checksums"), c.pop("class_module")])
    assert type(aekit.load(run_dir)) is aekit.Autoencoder
    code, _, err = run(["encode", run_dir, "--out", run_dir.parent / "z.npy"], capsys)
    assert code == 0, err
    code, _, err = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", run_dir, "--overwrite"], capsys
    )
    assert code == 0, err
    assert "config.json" in json.loads((run_dir / "aekit-manifest.json").read_text())["files"]


# --- 3. one writer at a time --------------------------------------------------------------------


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from aekit.io import folder_lock\n"
         "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
         str(out)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--out", out], capsys)
        assert code == 2 and f"in use by another aekit process (pid {holder.pid}" in err
        assert time.monotonic() - started < 30  # before loading and training, not after
        model, _ = make_fitted()
        with pytest.raises(FolderLockedError):
            model.save(out)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert main(["train", "ae", "--data", "digits", *FAST, "--out", str(out)]) == 0  # released


# --- 4. progress is never lost --------------------------------------------------------------------


def test_overwrite_keeps_the_old_model_until_the_new_run_is_complete(
    digits_run_small, capsys, monkeypatch, ctrl_c_in_epoch_3
):
    from aekit.datasets import load_dataset

    run_dir, _ = digits_run_small
    X = load_dataset("digits").X_test
    old = aekit.load(run_dir).transform(X)
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--epochs", "9", "--latent",
                        "3", "--checkpoint-seconds", "0", "--out", run_dir, "--overwrite"],
                       capsys)  # fmt: skip
    assert code == 130 and "keeps its earlier model" in err
    assert np.array_equal(aekit.load(run_dir).transform(X), old)
    staged = aekit.load(run_dir / "staging")
    assert staged.latent_dim == 3 and staged.n_epochs_ == 2
    monkeypatch.undo()
    # a full disk during the new run's checkpoint: the old model stays, the error names the file
    from aekit import io as aio

    real = aio.atomic_write_bytes

    def full(path, data):
        if "staging" in str(path) and str(path).endswith(".safetensors"):
            raise OSError(28, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(aio, "atomic_write_bytes", full)
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--latent", "3",
                        "--out", run_dir, "--overwrite"], capsys)  # fmt: skip
    assert code == 2 and "No space left on device" in err and "staging" in err
    assert np.array_equal(aekit.load(run_dir).transform(X), old)


def test_a_save_finishes_when_ctrl_c_arrives_during_it(tmp_path, monkeypatch):
    """The second Ctrl-C of an impatient user lands while the final save is being written: the
    save completes, then the interrupt takes effect."""
    from aekit import io as aio

    model, X = make_fitted(max_epochs=2)
    model.save(tmp_path / "m")
    model.partial_fit(X)
    real = aio.atomic_write_bytes
    sent = []

    def interrupting(path, data):
        if not sent:
            sent.append(path)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.02)
        return real(path, data)

    monkeypatch.setattr(aio, "atomic_write_bytes", interrupting)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "m")
    monkeypatch.undo()
    assert sent and aekit.load(tmp_path / "m").n_epochs_ == 3  # the new save, complete


@pytest.mark.subprocess
def test_sigterm_saves_the_run_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aekit", "train", "ae", "--data", "digits", "--hidden", "64",
         "--epochs", "100000", "--seed", "0", "-q", "--no-plots", "--threads", "1",
         "--checkpoint-seconds", "3600", "--out", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists():  # the first checkpoint: epoch 1
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        time.sleep(2.0)  # more epochs, which only the save at SIGTERM can keep
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    model = aekit.load(out)
    assert model.stop_reason_ == "interrupted" and model.n_epochs_ > 1


# --- 5. damaged files are refused -------------------------------------------------------------


def test_a_flipped_byte_in_the_weights_is_detected(tmp_path):
    model, _ = make_fitted()
    model.save(tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x01  # inside the last tensor's values: still a valid safetensors file
    f.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.safetensors: its contents differ"):
        aekit.load(tmp_path / "m")


def test_non_finite_weights_are_refused(tmp_path, capsys):
    import torch

    model, _ = make_fitted()
    model.save(tmp_path / "m")
    from aekit.io import load_tensors, save_tensors

    tensors, meta = load_tensors(tmp_path / "m" / "model.safetensors")
    name = next(iter(tensors))
    tensors[name][0] = float("nan")
    save_tensors(tmp_path / "m" / "model.safetensors", tensors, metadata=meta)  # same save_id
    reseal(tmp_path / "m", "model.safetensors")
    with pytest.raises(ModelFileError, match=f"{name}.*NaN or infinite"):
        aekit.load(tmp_path / "m")
    with torch.no_grad():
        next(model.module_.parameters())[0] = float("inf")
    with pytest.raises(ModelFileError, match=r"cannot save.*NaN or infinite"):
        model.save(tmp_path / "m2")
    assert not (tmp_path / "m2").exists()


# --- what a review found: each of these deleted, overwrote or lost something before its fix ------


def test_a_manifest_cannot_name_files_outside_its_folder(digits_run_small, tmp_path, capsys):
    run_dir, _ = digits_run_small
    victim, absolute = tmp_path / "victim.txt", tmp_path / "abs_victim.txt"
    victim.write_text("keep")
    absolute.write_text("keep")
    manifest = json.loads((run_dir / "aekit-manifest.json").read_text())
    manifest["files"] += ["../victim.txt", str(absolute), "..", "", STAGING]
    (run_dir / "aekit-manifest.json").write_text(json.dumps(manifest))
    (run_dir / STAGING).mkdir()
    (run_dir / STAGING / "aekit-manifest.json").write_text(
        json.dumps({"format": "aekit-manifest", "files": ["../../victim.txt"]})
    )
    code, _, err = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", run_dir, "--overwrite"], capsys
    )
    assert code == 0, err
    assert victim.read_text() == "keep" and absolute.read_text() == "keep"


def test_a_staging_link_is_refused_and_the_other_run_kept(digits_run_small, tmp_path, capsys):
    run_dir, _ = digits_run_small
    other = tmp_path / "other"
    assert main(["train", "ae", "--data", "digits", *FAST, "--out", str(other)]) == 0
    before = _snapshot(other)
    (run_dir / STAGING).symlink_to(other)
    capsys.readouterr()
    code, _, err = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", run_dir, "--overwrite"], capsys
    )
    assert code == 2 and "staging is not a folder aekit created" in err
    assert _snapshot(other) == before


def test_other_threads_cannot_enter_a_held_lock(tmp_path):
    import threading

    from aekit.io import folder_lock

    errors = []
    with folder_lock(tmp_path / "d"):
        with folder_lock(tmp_path / "d"):  # the same thread re-enters
            pass

        def other():
            try:
                with folder_lock(tmp_path / "d"):
                    pass
            except FolderLockedError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1
    with folder_lock(tmp_path / "d"):  # released
        pass


def test_outputs_into_a_run_folder_are_recorded_and_user_figures_kept(digits_run_small, capsys):
    run_dir, _ = digits_run_small
    code, _, err = run(["encode", run_dir, "--out", run_dir / "codes.npy"], capsys)
    assert code == 0, err
    assert "codes.npy" in json.loads((run_dir / "aekit-manifest.json").read_text())["files"]
    (run_dir / "latent.png").write_bytes(b"the user's own picture")
    code, _, err = run(["plot", run_dir], capsys)
    assert code == 0 and "latent.png was not written by aekit; left as it is" in err
    assert (run_dir / "latent.png").read_bytes() == b"the user's own picture"
    assert (run_dir / "learning_curves.png").exists()


def test_compare_and_report_never_write_over_a_run_file(digits_run_small, capsys):
    run_dir, _ = digits_run_small
    before = (run_dir / "metrics.json").read_bytes()
    code, _, err = run(["compare", run_dir, "--html", run_dir / "metrics.json", "--overwrite"],
                       capsys)  # fmt: skip
    assert code == 2 and "one of this command's inputs" in err
    assert (run_dir / "metrics.json").read_bytes() == before
    config = (run_dir / "config.json").read_bytes()
    code, _, err = run(["report", run_dir, "--out", run_dir / "config.json", "--overwrite"],
                       capsys)  # fmt: skip
    assert code == 2 and "one of this command's inputs" in err
    assert (run_dir / "config.json").read_bytes() == config


def test_a_commit_killed_mid_way_over_an_old_run_keeps_its_own_data_json(tmp_path):
    """Killed after config.json was moved aside and before the new one was written: the old
    save is whole, its data.json included (a save without checksums pairs them by position)."""
    from aekit.io import resolve_generation
    from aekit.persist import MODEL_FILES

    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("model.safetensors", "data.json", "history.json"):
        (folder / name).write_text("new")
        (folder / (name + ".prev")).write_text("old")
    (folder / "config.json.prev").write_text(json.dumps({"format": "aekit-model", "save_id": "a"}))
    files = resolve_generation(folder, [*MODEL_FILES[:-1], "data.json", "config.json"])
    assert {n: p.name for n, p in files.items()} == {
        "config.json": "config.json.prev", "model.safetensors": "model.safetensors.prev",
        "data.json": "data.json.prev", "history.json": "history.json.prev",
    }  # fmt: skip


def test_a_folder_of_an_older_aekit_names_the_foreign_files_first(tmp_path):
    from aekit.io import ownership

    model, _ = make_fitted()
    model.save(tmp_path / "m")
    (tmp_path / "m" / "aekit-manifest.json").unlink()
    (tmp_path / "m" / ".config.json.x1y2.tmp").write_text("left by a killed write")
    assert ownership(tmp_path / "m") == "legacy"
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match=r"did not write \(notes\.txt\).*move those files out"):
        ownership(tmp_path / "m")


def test_models_saved_by_the_previous_version_load_and_continue(tmp_path):
    """tests/data/saved_before_manifests: folders written by aekit 0.1.0 at commit 1820df1 (no
    manifest, no checksums, no class module), with the outputs that version gave. They load with
    the same outputs, partial_fit continues as it did there, and a new save adopts the folder."""
    import shutil
    from pathlib import Path

    source = Path(__file__).parent / "data" / "saved_before_manifests"
    shutil.copytree(source, tmp_path / "old")
    expected = np.load(tmp_path / "old" / "expected.npz")
    X = expected["X"]
    ae = aekit.load(tmp_path / "old" / "ae")
    aae = aekit.load(tmp_path / "old" / "aae")
    assert type(ae) is aekit.Autoencoder and type(aae) is aekit.AdversarialAutoencoder
    np.testing.assert_allclose(ae.transform(X), expected["ae_codes"], atol=1e-6)
    np.testing.assert_allclose(aae.transform(X), expected["aae_codes"], atol=1e-6)
    from aekit.datasets import load_dataset

    ae.partial_fit(load_dataset("digits").X_train[:200])
    np.testing.assert_allclose(ae.transform(X), expected["ae_codes_after_partial_fit"], atol=1e-5)
    ae.save(tmp_path / "old" / "ae")
    assert (tmp_path / "old" / "ae" / "aekit-manifest.json").exists()
    np.testing.assert_allclose(aekit.load(tmp_path / "old" / "ae").transform(X), ae.transform(X))


# --- aekit train --resume -----------------------------------------------------------------------

RESUMABLE = ["--latent", "2", "--hidden", "16", "--epochs", "6", "--seed", "3", "-q",
             "--no-plots", "--checkpoint-seconds", "0"]  # fmt: skip


def test_resume_continues_an_interrupted_run_as_if_never_stopped(
    tmp_path, capsys, monkeypatch, ctrl_c_in_epoch_3
):
    """Ctrl-C as epoch 3 starts, then --resume: the same weights as one uninterrupted run (the
    interrupt keeps the best epoch, here the last one, with its optimiser state)."""
    code, _, _ = run(["train", "ae", "--data", "digits", *RESUMABLE, "--out", tmp_path / "r"],
                     capsys)  # fmt: skip
    assert code == 130 and aekit.load(tmp_path / "r").n_epochs_ == 2
    monkeypatch.undo()
    code, _, err = run(["train", "--resume", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    code, _, _ = run(["train", "ae", "--data", "digits", *RESUMABLE, "--out", tmp_path / "whole"],
                     capsys)  # fmt: skip
    resumed, whole = aekit.load(tmp_path / "r"), aekit.load(tmp_path / "whole")
    assert resumed.n_epochs_ == whole.n_epochs_ == 6 and resumed.stop_reason_ == "max_epochs"
    for a, b in zip(resumed.module_.parameters(), whole.module_.parameters(), strict=True):
        assert torch_equal(a, b)
    assert (tmp_path / "r" / "metrics.json").exists()
    code, _, err = run(["train", "--resume", "--out", tmp_path / "r"], capsys)
    assert code == 2 and "is complete (6 epochs" in err and "--epochs N" in err
    code, _, err = run(["train", "--resume", tmp_path / "r", "--epochs", "7"], capsys)  # RUN
    assert code == 0 and aekit.load(tmp_path / "r").n_epochs_ == 7


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_resume_finishes_an_interrupted_overwrite_and_replaces_the_old_model(
    digits_run_small, capsys, monkeypatch, ctrl_c_in_epoch_3
):
    run_dir, _ = digits_run_small
    code, _, err = run(["train", "ae", "--data", "digits", *RESUMABLE, "--latent", "3", "--out",
                        run_dir, "--overwrite"], capsys)  # fmt: skip
    assert code == 130 and "--resume" in err and aekit.load(run_dir).latent_dim == 2
    monkeypatch.undo()
    code, _, err = run(["train", "--resume", "--out", run_dir], capsys)
    assert code == 0, err
    model = aekit.load(run_dir)
    assert model.latent_dim == 3 and model.n_epochs_ == 6 and not (run_dir / STAGING).exists()


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    code, _, err = run(["train", "--resume", "--out", tmp_path / "none"], capsys)
    assert code == 2 and "holds no model" in err
    code, _, err = run(["train", "--resume", "--data", "digits", "--out", tmp_path], capsys)
    assert code == 2 and "leave out --data" in err
    code, _, err = run(["train", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "needs a model name and --data" in err
    code, _, err = run(["train", "ae", "--data", "digits"], capsys)
    assert code == 2 and "train needs --out RUN" in err
    code, _, err = run(["train", "--resume"], capsys)
    assert code == 2 and "--resume needs the run to continue" in err
    code, _, err = run(["train", "--resume", tmp_path / "a", "--out", tmp_path / "b"], capsys)
    assert code == 2 and "name two folders" in err
    code, _, err = run(["train", "--resume", "", "--epochs", "3"], capsys)
    assert code == 2 and "--resume is empty" in err
    assert main(["train", "stacked", "--data", "digits", *FAST, "--set", "pretrain_epochs=1",
                 "--out", str(tmp_path / "s")]) == 0  # fmt: skip
    code, _, err = run(["train", "--resume", "--out", tmp_path / "s", "--epochs", "9"], capsys)
    assert code == 2 and "trains in stages" in err


def test_a_refused_output_is_not_recorded_as_aekits(digits_run_small, capsys):
    """Review finding: `aekit encode RUN --out RUN/oops.txt` exited 2 but recorded oops.txt in
    the run's manifest, so a user's own file saved later under that name would count as
    aekit's (and could be deleted by it). A name is recorded only when its file is written."""
    run_dir, _ = digits_run_small
    code, _, err = run(["encode", run_dir, "--out", run_dir / "oops.txt"], capsys)
    assert code == 2 and "write codes to a .npy or .csv file" in err
    code, _, err = run(["generate", run_dir, "--out", run_dir / "s.npy"], capsys)
    assert code == 2  # an autoencoder does not generate: refused after the --out check
    manifest = json.loads((run_dir / "aekit-manifest.json").read_text())["files"]
    assert "oops.txt" not in manifest and "s.npy" not in manifest
    code, _, err = run(["encode", run_dir, "--out", run_dir / "codes.npy"], capsys)
    assert code == 0, err
    assert "codes.npy" in json.loads((run_dir / "aekit-manifest.json").read_text())["files"]
