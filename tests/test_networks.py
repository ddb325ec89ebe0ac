"""Networks a user brings (``encoder=``, ``decoder=``, ``discriminator=``; aekit.networks):
every family trains with them, they are checked on one batch, saved as an import path plus
weights, and loaded only when the caller trusts the code."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import aekit
from aekit.cli import main
from aekit.errors import ModelFileError, ParameterError, UntrustedCodeError
from tests import usernets
from tests.helpers import FAMILIES, labels_for, tiny_X

ROOT = Path(__file__).resolve().parent.parent


def with_user_networks(model, by_path: bool):
    """``model`` with the test networks for every network parameter it has."""
    params = model.get_params()
    enc = "tests.usernets:Encoder" if by_path else usernets.Encoder
    new = {"encoder": enc, "encoder_kwargs": {"width": 8}, "decoder": usernets.Decoder}
    if "discriminator" in params:
        new["discriminator"] = usernets.Critic
    return model.set_params(**new)


def user_cases():
    for name, family in FAMILIES.items():
        if name.startswith("stacked"):
            continue  # greedy layer-wise pre-training builds its own layers: refused below
        for i, model in enumerate((*family.checked[:1], *family.variants)):
            yield pytest.param(name, model, id=f"{name}-{i}")


@pytest.mark.parametrize(("name", "model"), list(user_cases()))
def test_every_family_trains_saves_and_reloads_with_user_networks(name, model, tmp_path):
    model = with_user_networks(clone(model).set_params(max_epochs=2), by_path=len(name) % 2 == 0)
    X = tiny_X()
    y = labels_for(model)
    model.fit(X, y)
    assert isinstance(model.encoder_.net, usernets.Encoder)
    assert model.encoder_.net.net[1].out_features == 8  # encoder_kwargs reached the constructor
    if "discriminator" in model.get_params():
        assert any(isinstance(m, usernets.Critic) for m in model.module_.modules())
    codes = model.transform(X)
    assert codes.shape == (len(X), model._n_features_out) and np.isfinite(codes).all()
    model.save(tmp_path / "m")
    with pytest.raises(UntrustedCodeError, match="trust_code=True"):
        aekit.load(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m", trust_code=True)
    np.testing.assert_array_equal(loaded.transform(X), codes)
    given = {"encoder": usernets.Encoder, "decoder": usernets.Decoder}
    if "discriminator" in model.get_params():
        given["discriminator"] = usernets.Critic
    again = aekit.load(tmp_path / "m", objects=given)
    np.testing.assert_array_equal(again.transform(X), codes)


@pytest.mark.parametrize("cls", [aekit.StackedAutoencoder, aekit.StackedClassifier])
def test_stacks_refuse_user_networks_and_say_what_to_use(cls):
    with pytest.raises(ParameterError, match=r"DenoisingAutoencoder\(encoder=..., decoder=...\)"):
        cls(encoder=usernets.Encoder, hidden=(8,), latent_dim=2).fit(tiny_X(), np.arange(120) % 3)


def test_the_encoder_sees_images_in_their_shape_and_the_decoder_may_return_them():
    X = np.random.default_rng(0).random((40, 1, 9, 7), dtype=np.float32)
    model = aekit.Autoencoder(encoder=usernets.ConvEncoder, decoder=usernets.Decoder,
                              latent_dim=3, max_epochs=2, random_state=0).fit(X)  # fmt: skip
    assert model.encoder_.net.seen == (1, 9, 7)
    assert model.reconstruct(X).shape == (40, 63)


def test_the_encoder_sees_windows_when_input_shape_is_time_steps_by_channels():
    """Rows of a (T, C) window with input_shape=(T, C): the encoder gets (n, T, C), as
    examples/sequence_anomaly's networks need (a 3-D array would be read as gray images)."""
    X = np.random.default_rng(0).random((40, 5 * 3), dtype=np.float32)
    seen = []
    model = aekit.Autoencoder(encoder=usernets.Encoder, decoder=usernets.Decoder,
                              input_shape=(5, 3), latent_dim=2, max_epochs=1)  # fmt: skip
    model.fit(X)
    model.encoder_.net.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    model.transform(X)
    assert model.input_shape_ == (5, 3) and tuple(seen[0][1:]) == (5, 3)
    assert model.reconstruct(X).shape == (40, 15)


def test_a_vae_encoder_may_return_mean_and_log_variance_as_a_pair():
    X = tiny_X()
    pair = aekit.VAE(encoder=usernets.MeanLogvar, latent_dim=2, max_epochs=2, random_state=0,
                     device="cpu")  # fmt: skip
    pair.fit(X)
    mu = pair.module_.encoder.net.mu
    with torch.no_grad():
        expected = mu(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(pair.transform(X), expected, rtol=1e-5, atol=1e-6)


# --- the contract, checked on one batch before training ---------------------------------------


def test_a_wrong_output_width_names_the_shapes():
    vae = aekit.VAE(encoder=usernets.Encoder, encoder_kwargs={"out_features": 2}, latent_dim=2)
    with pytest.raises(ParameterError, match=r"returned a tensor of shape \(2, 2\).*\(mu, logvar\)"
                       r".*or one tensor of shape \(n, 4\)"):  # fmt: skip
        vae.fit(tiny_X())
    assert not hasattr(vae, "module_")  # refused before anything was trained


def test_a_failing_layer_names_the_network_and_what_it_receives():
    model = aekit.Autoencoder(encoder=usernets.Broken, latent_dim=2)
    with pytest.raises(ParameterError, match=r"the encoder \(Broken\) failed on input of shape "
                       r"\(2, 10\) with RuntimeError"):  # fmt: skip
        model.fit(tiny_X())


def test_preflight_runs_the_user_networks_before_anything_is_written():
    model = aekit.Autoencoder(
        decoder=usernets.Encoder, decoder_kwargs={"input_shape": [2], "out_features": 3}
    )
    with pytest.raises(ParameterError, match=r"the decoder \(Encoder\) returned a tensor of shape "
                       r"\(2, 3\).*must return a tensor of shape \(n, 10\)"):  # fmt: skip
        model.preflight(tiny_X())


def test_a_decoder_ending_in_a_sigmoid_is_refused_for_bce():
    model = aekit.Autoencoder(decoder=usernets.SigmoidDecoder, loss="bce", latent_dim=2)
    with pytest.raises(ParameterError, match=r"ends with a Sigmoid.*takes logits"):
        model.fit(tiny_X())
    # with squared error, a sigmoid output is a choice the user may make
    aekit.Autoencoder(decoder=usernets.SigmoidDecoder, loss="mse", latent_dim=2,
                      max_epochs=1).fit(tiny_X())  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"encoder": "tests.usernets:not_a_module"}, "names .*not a torch.nn.Module subclass"),
        ({"encoder": "tests.usernets:Missing"}, "cannot be imported"),
        ({"encoder": "nodots"}, "not an import path"),
        ({"encoder": usernets.Fixed(), "encoder_kwargs": {"a": 1}}, "already a module instance"),
        (
            {"encoder": usernets.Encoder, "encoder_kwargs": {"depth": 3}},
            r"building encoder=tests.usernets.Encoder failed with TypeError.*encoder_kwargs",
        ),
        ({"encoder": usernets.Encoder, "tied": True}, "tied=True"),
        ({"encoder": print}, "is invalid; expected None or a torch.nn.Module subclass"),
    ],
)
def test_bad_network_parameters_say_what_is_wrong(params, message):
    with pytest.raises(ParameterError, match=message):
        aekit.Autoencoder(latent_dim=2, max_epochs=1, **params).fit(tiny_X())


# --- instances, seeds, the scikit-learn contract ------------------------------------------------


def test_an_instance_is_copied_trained_from_its_weights_and_left_unchanged():
    net = usernets.Fixed()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    start = aekit.Autoencoder(encoder=net, latent_dim=2, max_epochs=0, device="cpu").fit(tiny_X())
    for k, v in start.encoder_.net.state_dict().items():  # no epoch: the instance's own weights
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    trained = aekit.Autoencoder(encoder=net, latent_dim=2, max_epochs=2, device="cpu").fit(tiny_X())
    assert trained.encoder_.net is not net
    assert not torch.equal(trained.encoder_.net.lin.weight, before["lin.weight"])
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_a_class_is_built_under_the_seed_and_the_global_random_state_is_untouched():
    def weights(seed):
        model = aekit.Autoencoder(encoder=usernets.Encoder, decoder=usernets.Decoder,
                                  latent_dim=2, max_epochs=0, random_state=seed)  # fmt: skip
        return model.fit(tiny_X()).module_.state_dict()

    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = weights(0), weights(0), weights(1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["encoder.net.net.1.weight"], c["encoder.net.net.1.weight"])


def test_clone_grid_search_and_pickle_keep_working():
    net = usernets.Fixed()
    model = aekit.Autoencoder(encoder=net, latent_dim=2, max_epochs=1, random_state=0)
    copy = clone(model)
    assert isinstance(copy.encoder, usernets.Fixed) and copy.encoder is not net
    search = GridSearchCV(
        aekit.Autoencoder(encoder=usernets.Encoder, latent_dim=2, max_epochs=1, random_state=0),
        {"encoder_kwargs": [{"width": 4}, {"width": 8}]}, cv=2,
    ).fit(tiny_X())  # fmt: skip
    assert search.best_params_["encoder_kwargs"]["width"] in (4, 8)
    fitted = search.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(tiny_X()), fitted.transform(tiny_X()))


# --- saving and loading: only what the caller trusts ------------------------------------------


def test_an_instance_saved_loads_with_objects_or_trust_when_it_needs_no_arguments(tmp_path):
    X = tiny_X()
    model = aekit.Autoencoder(encoder=usernets.Fixed(), latent_dim=2, max_epochs=2).fit(X)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["encoder"] == {"instance_of": "tests.usernets:Fixed"}
    for loaded in (aekit.load(tmp_path / "m", trust_code=True),
                   aekit.load(tmp_path / "m", objects={"encoder": usernets.Fixed()})):  # fmt: skip
        np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    # a constructor with the sizes aekit knows: rebuilt with them
    other = aekit.Autoencoder(encoder=usernets.Encoder(input_shape=(10,), out_features=2),
                              latent_dim=2, max_epochs=1).fit(X)  # fmt: skip
    other.save(tmp_path / "o")
    again = aekit.load(tmp_path / "o", trust_code=True)
    np.testing.assert_array_equal(again.transform(X), other.transform(X))
    # built with other arguments: the weights do not fit, and the message says what to pass
    wide = aekit.Autoencoder(encoder=usernets.Encoder(input_shape=(10,), out_features=2, width=4),
                             latent_dim=2, max_epochs=1).fit(X)  # fmt: skip
    wide.save(tmp_path / "w")
    with pytest.raises(ModelFileError, match=r"size mismatch.*objects=\{'encoder': ...\}"):
        aekit.load(tmp_path / "w", trust_code=True)


@pytest.mark.parametrize("path", ["os:system", "subprocess:Popen", "tests.usernets:not_a_module"])
def test_a_path_that_is_not_a_module_class_is_refused_even_when_trusted(tmp_path, path):
    model = aekit.Autoencoder(encoder=usernets.Encoder, latent_dim=2, max_epochs=1).fit(tiny_X())
    model.save(tmp_path / "m")
    config_file = tmp_path / "m" / "config.json"
    config = json.loads(config_file.read_text())
    config["params"]["encoder"] = path
    config_file.write_text(json.dumps(config))
    with pytest.raises(UntrustedCodeError, match=r"refused.*torch.nn.Module subclass"):
        aekit.load(tmp_path / "m", trust_code=True)


def test_a_class_defined_in_a_function_is_refused_at_save_time(tmp_path):
    class Local(usernets.Encoder):
        pass

    model = aekit.Autoencoder(encoder=Local, latent_dim=2, max_epochs=1).fit(tiny_X())
    with pytest.raises(ModelFileError, match=r"defined inside a function.*top level of a module"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_keyword_arguments_that_json_cannot_hold_are_refused_at_save_time(tmp_path):
    class Width(int):
        pass

    model = aekit.Autoencoder(encoder=usernets.Encoder, encoder_kwargs={"width": Width(4)},
                              latent_dim=2, max_epochs=1).fit(tiny_X())  # fmt: skip
    model.save(tmp_path / "ok")  # an int subclass is a JSON number
    model.set_params(encoder_kwargs={"width": np.int64(4)})
    with pytest.raises(ModelFileError, match=r"encoder_kwargs\['width'\] = .*not a JSON value"):
        model.save(tmp_path / "m")


@pytest.mark.subprocess
def test_a_fresh_process_loads_the_model_and_gives_identical_outputs(tmp_path):
    X = np.random.default_rng(1).random((30, 1, 8, 8), dtype=np.float32)
    kwargs = {"channels": 3, "latent_dim": 4}  # (mu, logvar) as one tensor: 2 * latent_dim
    model = aekit.VAE(encoder="tests.usernets:ConvEncoder", encoder_kwargs=kwargs,
                      decoder=usernets.Decoder, latent_dim=2, max_epochs=2,
                      random_state=0).fit(X)  # fmt: skip
    model.save(tmp_path / "m")
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys, numpy as np, aekit\n"
        "m = aekit.load(sys.argv[1], trust_code=True)\n"
        "np.save(sys.argv[2], m.transform(np.load(sys.argv[3])))\n"
        "np.save(sys.argv[4], m.reconstruct(np.load(sys.argv[3])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, tmp_path / "m", tmp_path / "z.npy", tmp_path / "X.npy",
         tmp_path / "r.npy"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), model.transform(X))
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), model.reconstruct(X))


def test_the_command_line_takes_a_network_by_import_path_with_trust_code(tmp_path, capsys):
    np.save(tmp_path / "x.npy", tiny_X())
    base = ["train", "ae", "--data", str(tmp_path / "x.npy"), "--latent", "2", "--epochs", "1",
            "--seed", "0", "-q", "--no-plots", "--set", "encoder=tests.usernets:Encoder",
            "--set", 'encoder_kwargs={"width": 4}', "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(base) == 2
    assert "--trust-code" in capsys.readouterr().err
    assert main([*base, "--trust-code"]) == 0
    capsys.readouterr()
    out = tmp_path / "codes.npy"
    assert main(["encode", str(tmp_path / "run"), "--out", str(out)]) == 2
    assert "trust" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "run"), "--out", str(out), "--trust-code"]) == 0
    assert np.load(out).shape[1] == 2


def test_a_user_encoder_receives_three_dimensional_input_as_given():
    """Windows ``(n, T, C)`` reach a user's encoder as they are, not as gray images."""
    X = np.random.default_rng(0).random((30, 12, 3), dtype=np.float32)
    model = aekit.Autoencoder(encoder=usernets.Encoder, decoder=usernets.Decoder, latent_dim=2,
                              max_epochs=1, random_state=0).fit(X)  # fmt: skip
    assert model.input_shape_ == (12, 3)
    assert model.reconstruct(X).shape == (30, 36)


def test_user_networks_train_on_a_torch_dataset_as_on_the_array():
    """A Dataset of image tensors and the same images as an array give the same model."""
    images = np.random.default_rng(2).random((48, 1, 9, 7), dtype=np.float32)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images))
    params = dict(encoder=usernets.ConvEncoder, decoder=usernets.Decoder, latent_dim=3,
                  max_epochs=2, batch_size=16, random_state=0)  # fmt: skip
    a = aekit.Autoencoder(**params).fit(images)
    b = aekit.Autoencoder(**params).fit(dataset)
    assert b.encoder_.net.seen == (1, 9, 7)
    for k, v in a.module_.state_dict().items():
        assert torch.equal(v, b.module_.state_dict()[k]), k


def test_a_decoder_output_in_another_layout_is_refused():
    """(n, C, W, H) for (C, H, W) images has the right number of values, but training on it
    would compare scrambled pixels: only (n, *input_shape) or flat rows are taken."""
    X = np.random.default_rng(0).random((20, 1, 3, 5), dtype=np.float32)
    model = aekit.Autoencoder(decoder=usernets.TransposingDecoder, latent_dim=2, max_epochs=1)
    with pytest.raises(ParameterError, match=r"returned a tensor of shape \(2, 1, 5, 3\).*"
                       r"\(n, 1, 3, 5\) or \(n, 15\)"):  # fmt: skip
        model.fit(X)


def test_instances_sharing_parameters_are_refused_not_silently_untied():
    enc = usernets.Fixed()
    dec = torch.nn.Linear(2, 10)
    dec.weight = torch.nn.Parameter(enc.lin.weight.t())  # a new tensor: not shared, accepted
    aekit.Autoencoder(encoder=enc, decoder=dec, latent_dim=2, max_epochs=1).fit(tiny_X())
    tied = torch.nn.Sequential(enc.lin)  # the same Linear: its parameters are shared
    with pytest.raises(ParameterError, match="share parameters"):
        aekit.Autoencoder(encoder=enc, decoder=tied, latent_dim=2).fit(tiny_X())


def test_a_constructor_that_reads_values_is_built_for_real_not_refused():
    """The memory check builds networks on the meta device; a constructor that reads a
    tensor's value cannot run there, and is then built for real instead."""
    model = aekit.Autoencoder(encoder=usernets.ReadsValues, latent_dim=2, max_epochs=1)
    assert model.fit(tiny_X()).encoder_.net.scale > 0


def test_lazy_layers_are_refused_with_the_fix():
    with pytest.raises(ParameterError, match=r"lazy parameter.*aekit passes input_shape"):
        aekit.Autoencoder(encoder=usernets.LazyEncoder, latent_dim=2).fit(tiny_X())


def test_dropout_in_a_user_network_is_reproducible_and_leaves_the_global_state_alone():
    """Each epoch runs with torch's global generator forked and seeded from random_state and
    the epoch number: a user's nn.Dropout gives the same model for the same seed."""
    params = dict(encoder=usernets.DropoutEncoder, latent_dim=2, max_epochs=2, random_state=0)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    a = aekit.Autoencoder(**params).fit(tiny_X())
    torch.manual_seed(99)  # another global state: the same model
    b = aekit.Autoencoder(**params).fit(tiny_X())
    torch.manual_seed(5)
    aekit.Autoencoder(**params).fit(tiny_X())
    assert torch.equal(torch.random.get_rng_state(), state)
    for k, v in a.module_.state_dict().items():
        assert torch.equal(v, b.module_.state_dict()[k]), k


def test_a_class_from_the_main_script_loads_only_from_objects(tmp_path):
    """A class defined in __main__ (a script, a notebook) is saved by name, but no other
    process can import it by that name: load asks for it in objects=."""
    Main = type("Encoder", (usernets.Encoder,), {"__module__": "__main__"})
    model = aekit.Autoencoder(encoder=Main, latent_dim=2, max_epochs=1).fit(tiny_X())
    model.save(tmp_path / "m")
    with pytest.raises(UntrustedCodeError, match=r"__main__:Encoder.*objects=\{'encoder'"):
        aekit.load(tmp_path / "m", trust_code=True)
    loaded = aekit.load(tmp_path / "m", objects={"encoder": usernets.Encoder})
    np.testing.assert_array_equal(loaded.transform(tiny_X()), model.transform(tiny_X()))


def test_a_class_that_does_not_import_back_by_its_name_is_refused_at_save_time(tmp_path):
    Renamed = type("Renamed", (usernets.Encoder,), {"__module__": "tests.usernets"})
    model = aekit.Autoencoder(encoder=Renamed, latent_dim=2, max_epochs=1).fit(tiny_X())
    with pytest.raises(
        ModelFileError, match=r"cannot be imported back as 'tests.usernets:Renamed'"
    ):
        model.save(tmp_path / "m")


def test_changing_the_network_after_fitting_is_refused_by_partial_fit_and_save(tmp_path):
    """set_params of a parameter that shapes the network, then partial_fit or save, would go on
    with the trained network under parameters that describe another (and save a folder whose
    config its weights do not fit): refused, with the way back. Training settings may change."""
    model = aekit.Autoencoder(encoder=usernets.Encoder, latent_dim=2, max_epochs=1).fit(tiny_X())
    for change in ({"latent_dim": 5}, {"encoder_kwargs": {"width": 4}}, {"hidden": (4,)}):
        model.set_params(**change)
        name = next(iter(change))
        with pytest.raises(ParameterError, match=rf"{name}=.*but the network was built with"):
            model.partial_fit(tiny_X())
        with pytest.raises(ParameterError, match=rf"save would go on.*set_params\({name}="):
            model.save(tmp_path / "m")
        model.set_params(**{"latent_dim": 2, "encoder_kwargs": None, "hidden": None})
    model.set_params(lr=0.01, batch_size=16)  # training settings: fine
    model.partial_fit(tiny_X()).save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m", trust_code=True)  # the config its weights fit
    np.testing.assert_array_equal(loaded.transform(tiny_X()), model.transform(tiny_X()))


def test_sizes_reach_a_constructor_that_also_takes_keywords():
    model = aekit.Autoencoder(encoder=usernets.KeywordsEncoder, latent_dim=2, max_epochs=1)
    assert model.fit(tiny_X()).encoder_.net.lin.in_features == 10


def test_a_decoder_class_ending_in_a_sigmoid_is_refused_for_bce():
    model = aekit.Autoencoder(decoder=usernets.WrappedSigmoidDecoder, loss="bce", latent_dim=2)
    with pytest.raises(ParameterError, match=r"ends with a Sigmoid"):
        model.fit(tiny_X())


def test_keyword_arguments_without_their_network_are_refused():
    with pytest.raises(ParameterError, match=r"encoder_kwargs=.*but encoder=None"):
        aekit.Autoencoder(encoder_kwargs={"width": 3}, latent_dim=2).fit(tiny_X())


def test_batch_norm_in_a_user_network_names_a_one_row_batch_and_the_contractive_limit():
    enc = dict(encoder=usernets.BatchNormEncoder, latent_dim=2, max_epochs=1)
    with pytest.raises(aekit.DataError, match=r"17 rows with batch_size=16 leave a last batch "
                       r"of 1.*Choose a batch_size"):  # fmt: skip
        aekit.Autoencoder(**enc, batch_size=16, validation_fraction=0).fit(tiny_X(17))
    with pytest.raises(ParameterError, match=r"BatchNorm1d.*jacobian='hutchinson'"):
        aekit.ContractiveAutoencoder(**enc).fit(tiny_X())
    aekit.ContractiveAutoencoder(**enc, jacobian="hutchinson").fit(tiny_X())
