"""Adversarial autoencoders: priors, the three phases, matching a prior, the supervised,
label-conditioned, semi-supervised and clustering forms, and the shared contract."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

import aekit
from aekit import (
    AAEClustering,
    AdversarialAutoencoder,
    Autoencoder,
    DataError,
    ModelFileError,
    ParameterError,
    SemiSupervisedAAE,
)
from aekit.cli import main
from aekit.metrics import cluster_accuracy, knn_accuracy, mmd2
from aekit.models.aae.common import critic_loss, discriminator_loss
from aekit.priors import import_path, make_prior, mixture_means

from .helpers import few_labels

FAST = dict(hidden=(32,), discriminator_hidden=(32,), max_epochs=3, random_state=0)


def ring(n, generator):
    """A user prior at module level (importable, so a model using it can be saved)."""
    angle = 2 * torch.pi * torch.rand(n, generator=generator, device=generator.device)
    return torch.stack([angle.cos(), angle.sin()], dim=1) * 3


def _near_component(Z, means, std):
    """Share of codes within 2 standard deviations of some component mean (a sample of the
    prior itself has 1 - exp(-2) = 0.86 of its points there in 2-D)."""
    d = np.linalg.norm(Z[:, None, :] - means[None], axis=-1).min(1)
    return float((d < 2 * std).mean())


# -- priors ------------------------------------------------------------------------------------


def test_mixture_means_lie_on_a_circle_or_on_separate_axes():
    m2 = mixture_means(2, 10, 4.0)
    assert np.allclose(np.linalg.norm(m2, axis=1), 4.0)
    steps = np.diff(np.unwrap(np.arctan2(m2[:, 1], m2[:, 0])))
    assert np.allclose(steps, 2 * np.pi / 10)
    for dim, k in ((5, 10), (8, 10), (3, 20)):
        m = mixture_means(dim, k, 4.0)
        assert m.shape == (k, dim) and np.allclose(np.linalg.norm(m, axis=1), 4.0)
        gaps = np.linalg.norm(m[:, None] - m[None], axis=-1) + np.eye(k) * 1e9
        # orthogonal axes are 4*sqrt(2) apart; the best 20 points on a sphere, 0.80 radius
        assert gaps.min() > (4 * np.sqrt(2) - 1e-6 if k <= 2 * dim else 0.75 * 4), (dim, k)


def test_labelled_prior_samples_come_from_their_component():
    prior = make_prior("mixture", 2, 10, {"radius": 4.0, "std": 0.5})
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([3] * 2000 + [-1] * 2000)
    z = prior.sample(4000, g, labels=labels).numpy()
    assert np.allclose(z[:2000].mean(0), prior.means[3].numpy(), atol=0.05)
    assert z[:2000].std(0) == pytest.approx([0.5, 0.5], rel=0.1)
    nearest = np.argmin(np.linalg.norm(z[2000:, None] - prior.means.numpy()[None], axis=-1), 1)
    assert np.bincount(nearest, minlength=10).min() > 120  # unlabelled: every component
    again = prior.sample(4000, torch.Generator().manual_seed(0), labels=labels).numpy()
    assert np.array_equal(z, again)


def test_swiss_roll_segments_and_other_priors():
    roll = make_prior("swiss_roll", 2, 4)
    z = roll.sample(1000, torch.Generator().manual_seed(0), labels=torch.full((1000,), 2))
    r = np.linalg.norm(z.numpy(), axis=1)
    assert r.min() >= 3 * np.sqrt(2 / 4) - 1e-5 and r.max() <= 3 * np.sqrt(3 / 4) + 1e-5
    box = make_prior("uniform", 3, params={"low": -1, "high": 2}).sample(
        5000, torch.Generator().manual_seed(0)
    )
    assert box.min() >= -1 and box.max() <= 2 and box.mean() == pytest.approx(0.5, abs=0.05)
    gauss = make_prior("gaussian", 4).sample(20000, torch.Generator().manual_seed(0))
    assert gauss.std().item() == pytest.approx(1.0, abs=0.02)


def test_prior_errors_name_the_fix():
    with pytest.raises(ParameterError, match="not a known prior"):
        make_prior("cauchy", 2)
    with pytest.raises(ParameterError, match=r"prior_params \['radius'\] do not apply"):
        make_prior("gaussian", 2, params={"radius": 3})
    with pytest.raises(ParameterError, match="swiss_roll prior is 2-D"):
        make_prior("swiss_roll", 3)
    with pytest.raises(ParameterError, match=r"returned shape \(5, 3\).*\(5, 2\)"):
        make_prior(lambda n, g: torch.zeros(n, 3), 2).sample(5, torch.Generator())
    with pytest.raises(ParameterError, match="has no components"):
        make_prior("gaussian", 2).sample(3, torch.Generator(), labels=torch.zeros(3))
    with pytest.raises(ParameterError, match="cannot be imported"):
        make_prior("no_such_module_xyz:f", 2)


def test_import_path_only_for_importable_functions():
    assert import_path(ring) == f"{ring.__module__}:ring"
    assert make_prior(import_path(ring), 2).fn is ring
    assert import_path(lambda n, g: None) is None

    def local(n, g):
        return None

    assert import_path(local) is None


# -- the phases --------------------------------------------------------------------------------


def _record_phase_steps(model, X, y=None):
    """Run one more epoch, snapshotting every parameter when each phase's objective is called;
    returns ``[(phase name, names changed since the previous phase started)]``."""
    module, trainer = model.module_, model._trainer
    calls = []

    def wrap(phase):
        objective = phase.objective

        def recorded(batch, generator):
            calls.append((phase.name, {k: v.detach().clone() for k, v in
                                       module.named_parameters()}))  # fmt: skip
            return objective(batch, generator)

        return recorded

    for phase in trainer.phases:
        phase.objective = wrap(phase)
    model.partial_fit(X, y)
    steps = []
    for (name, before), (_, after) in itertools.pairwise(calls):
        steps.append((name, {k for k in before if not torch.equal(before[k], after[k])}))
    return steps, [c[0] for c in calls]


def _names(module, submodules):
    return {f"{s}.{k}" for s in submodules for k, _ in getattr(module, s).named_parameters()}


@pytest.mark.parametrize("weight", [30.0, None])
def test_aae_phases_alternate_and_update_only_their_parameters(digits, weight):
    """The default (a generator_weight) runs two phases, the generator's loss inside the
    reconstruction phase; generator_weight=None the paper's three."""
    X = digits.X_train[:256]
    # cuda_graphs=False: the objectives are wrapped in Python, which a graph replay skips
    model = AdversarialAutoencoder(batch_size=64, validation_fraction=0, cuda_graphs=False,
                                   generator_weight=weight, **FAST).partial_fit(X)  # fmt: skip
    steps, order = _record_phase_steps(model, X)
    phases = ["reconstruction", "discriminator"] + (["generator"] if weight is None else [])
    assert order == phases * 4
    m = model.module_
    owned = {
        "reconstruction": _names(m, ["encoder", "decoder"]),
        "discriminator": _names(m, ["discriminator"]),
        "generator": _names(m, ["encoder"]),
    }
    for name, changed in steps:
        assert changed and changed <= owned[name], (name, changed - owned[name])
    assert {n for n, c in steps if c & owned["discriminator"]} == {"discriminator"}
    h = model.history_[-1]
    for key in ("loss", "discriminator_loss", "discriminator_accuracy", "generator_loss"):
        assert np.isfinite(h[key]), key


@pytest.mark.parametrize("weight", [None, 30.0])
def test_semi_supervised_phases_alternate_and_update_only_their_parameters(digits, weight):
    X, y = digits.X_train[:256], few_labels(digits.y_train[:256], 3, 0)
    model = SemiSupervisedAAE(batch_size=64, validation_fraction=0, cuda_graphs=False,
                              generator_weight=weight, **FAST).partial_fit(X, y)  # fmt: skip
    steps, order = _record_phase_steps(model, X, y)
    generator = ["generator"] if weight is None else []
    assert order == ["reconstruction", "discriminator", *generator, "classification"] * 4
    m = model.module_
    owned = {
        "reconstruction": _names(m, ["encoder", "decoder"]),
        "discriminator": _names(m, ["category_critic", "style_critic"]),
        "generator": _names(m, ["encoder"]),
        "classification": _names(m, ["encoder"]),
    }
    for name, changed in steps:
        assert changed and changed <= owned[name], (name, changed - owned[name])


def test_adversarial_phases_use_gan_betas_and_their_own_rates(digits):
    model = AdversarialAutoencoder(lr=1e-3, discriminator_lr=2e-4, generator_lr=5e-4,
                                   generator_weight=None, **FAST)  # fmt: skip
    model.fit(digits.X_train[:100])
    groups = {k: o.param_groups[0] for k, o in model._trainer.optimizers.items()}
    assert groups["reconstruction"]["lr"] == 1e-3
    assert groups["reconstruction"]["betas"] == (0.9, 0.999)
    assert groups["discriminator"]["lr"] == 2e-4 and groups["generator"]["lr"] == 5e-4
    assert groups["discriminator"]["betas"] == groups["generator"]["betas"] == (0.5, 0.999)


def test_discriminator_loss_smoothing_and_r1_penalty_match_their_formulas():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    loss, acc = discriminator_loss(real, fake, smoothing=0.1)
    by_hand = (
        -(0.9 * F.logsigmoid(real) + 0.1 * F.logsigmoid(-real)).mean() - F.logsigmoid(-fake).mean()
    )
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert acc.item() == pytest.approx((2 / 3 + 1 / 3) / 2)
    # a linear critic D(z) = w.z + b has gradient w everywhere: the penalty is gamma/2 |w|^2
    critic = torch.nn.Linear(3, 1)
    z_real, z_fake = torch.randn(8, 3), torch.randn(8, 3)
    plain, _ = critic_loss(lambda z: critic(z).squeeze(1), z_real, z_fake, 0.0, 0.0)
    penalised, _ = critic_loss(lambda z: critic(z).squeeze(1), z_real, z_fake, 0.0, 2.0)
    assert (penalised - plain).item() == pytest.approx(critic.weight.pow(2).sum().item(), rel=1e-5)
    penalised.backward()  # the penalty trains the critic (double backward)
    assert critic.weight.grad is not None


def test_instance_noise_only_while_training(digits):
    model = AdversarialAutoencoder(discriminator_noise=0.5, **FAST).fit(digits.X_train[:100])
    z = torch.zeros(4, 2, device=model.device_)
    g = torch.Generator(device=model.device_).manual_seed(0)
    m = model.module_.eval()
    assert torch.equal(m.critic(z, None, g), m.critic(z, None, g))
    m.train()
    assert not torch.equal(m.critic(z, None, g), m.critic(z, None, g))
    m.eval()


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("label_smoothing", 0.5, r"in \[0, 0\.5\)"),
        ("gradient_penalty", -1.0, ">= 0"),
        ("discriminator_hidden", (0,), "positive integers"),
        ("discriminator_lr", 0.0, "> 0"),
        ("posterior", "laplace", "'deterministic', 'gaussian'"),
        ("prior_params", [1], "None or a dict"),
    ],
)
def test_parameter_errors(param, value, expected):
    X = np.random.default_rng(0).random((20, 4), dtype=np.float32)
    with pytest.raises(ParameterError, match=rf"AdversarialAutoencoder: {param}=.*{expected}"):
        AdversarialAutoencoder(**{**FAST, param: value}).fit(X)


# -- matching the prior ------------------------------------------------------------------------

MIXTURE = dict(latent_dim=2, hidden=(128, 64), max_epochs=100, batch_size=64,
               validation_fraction=0, loss="bce")  # fmt: skip


def _mixture_prior_stats(digits, seed):
    """One seed of the claim below: the AAE's test codes against its prior, next to a plain
    autoencoder of the same network and training."""
    X, X_test = digits.X_train, digits.X_test
    aae = AdversarialAutoencoder(prior="mixture", n_components=10, random_state=seed,
                                 **MIXTURE).fit(X)  # fmt: skip
    Z = aae.transform(X_test)
    P = aae.sample_prior(2000, random_state=100)
    floor = mmd2(aae.sample_prior(len(Z), random_state=101), P)
    A = Autoencoder(random_state=seed, **MIXTURE).fit(X).transform(X_test)
    scaled = A * P.std(0) / A.std(0)  # the plain autoencoder's codes at the prior's spread
    centred = (A - A.mean(0)) * P.std(0) / A.std(0) + P.mean(0)
    means = aae.module_.prior.means.numpy()
    near, near_ae = _near_component(Z, means, 0.5), _near_component(centred, means, 0.5)
    return {
        "ratio_ae": mmd2(Z, P) / mmd2(scaled, P),
        "ratio_floor": mmd2(Z, P) / floor,
        "near": near,
        "near_ae": near_ae,
        "near_ratio": near / near_ae,
    }


@pytest.mark.slow
def test_codes_match_a_mixture_prior(digits):
    """The test codes of a 2-D AAE with a 10-component mixture prior, against samples of the
    prior (squared MMD, Gaussian kernel, bandwidth by the median heuristic on 2000 prior samples),
    each statistic the median over seeds 0-4: one seed's value moves with the machine's kernels.

    Measured with the default joint objective (``generator_weight=30``; seeds 0-4 at 1 and 2
    threads, identical) on a 2-core machine: squared MMD of the AAE's codes / that of a plain
    autoencoder's codes rescaled to the prior's spread 0.005, 0.022, 0.039, 0.002, 0.004 (median
    0.005; bound 0.5); / that of a second prior sample of the test set's size (the noise floor)
    0.77, 0.81, 2.13, 0.16, 0.43 (median 0.77; bound 5.0). With the separate generator phase
    (``generator_weight=None``, the default before) they are 0.014 and 1.13 (medians; floor
    ratios 1.08, 0.29, 2.73, 1.13, 4.23; an older version measured one seed at 6.50, and another
    machine 0.16-2.29 on seeds 0-2): a seed lands above the floor bound now and then, so the
    old worst-of-three check failed on one machine; a median of five fails only where three of
    five do. This broad kernel sees mostly the first two
    moments: a plain autoencoder's codes centred and rescaled to the prior's mean and spread reach
    1.9-2.1 times the floor too. What tells the AAE apart is the share of codes within 2 std of a
    component: 0.647, 0.628, 0.642, 0.669, 0.642 (the prior's own 0.86; separate phase 0.550,
    0.697, 0.642, 0.686, 0.567), against the centred autoencoder's 0.219, 0.211, 0.181, 0.178,
    0.267 on the same seed: ratio 2.95, 2.97, 3.55, 3.77, 2.41 (median 2.97; separate phase
    3.30; bound 2). The share alone moves with the machine (0.63-0.69 on the other one), so it is
    bounded only through this paired ratio. Without the stabilisers (Adam beta_1 0.5 and the R1
    penalty in the adversarial phases, measured with the separate phase) the floor ratio was
    8.8-11.9 on every seed:
    the floor bound fails it.
    """
    stats = [_mixture_prior_stats(digits, seed) for seed in range(5)]
    med = {k: float(np.median([s[k] for s in stats])) for k in stats[0]}
    assert med["ratio_ae"] < 0.5, stats
    assert med["ratio_floor"] < 5.0, stats
    assert med["near_ratio"] > 2.0, stats


def _fashion_or_skip():
    from aekit.datasets import load_dataset

    try:
        return load_dataset("fashion-mnist", download=False)
    except DataError as e:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): {e}")


@pytest.mark.slow
def test_the_joint_objective_keeps_the_reconstruction_on_many_features():
    """The balance follows the data (issue 16): on Fashion-MNIST's 784 pixels, the separate
    generator phase (``generator_weight=None``, Adam steps as large as the reconstruction's)
    pulls a 2-D Gaussian-prior model off its reconstruction, while the default joint objective
    keeps it. 10,000 training images, 10 epochs; on 2,000 test images, the reconstruction (minus
    the BCE deviance per image) and 5-NN accuracy of the codes, paired by seed (0-2).

    Measured on a 2-core machine, joint against separate: score -71.8/-149.2, -71.6/-136.6,
    -72.6/-163.4 (gains 77, 65, 91 nats; median 77, bound 30); 5-NN 0.605/0.470, 0.612/0.549,
    0.623/0.516 (gains 0.136, 0.063, 0.107; median 0.107, bound 0.03); 1 and 2 threads
    identical. About 75 s.
    """
    data = _fashion_or_skip()
    X, y = data.X_train[:10000], data.y_train[:10000]
    X_test, y_test = data.X_test[:2000], data.y_test[:2000]
    score_gain, knn_gain = [], []
    for seed in range(3):
        stats = []
        for weight in (30.0, None):
            model = AdversarialAutoencoder(
                latent_dim=2, max_epochs=10, validation_fraction=0, generator_weight=weight,
                random_state=seed,
            ).fit(X)  # fmt: skip
            Z, Z_test = model.transform(X), model.transform(X_test)
            stats.append((model.score(X_test), knn_accuracy(Z, y, Z_test, y_test, 5)))
        score_gain.append(stats[0][0] - stats[1][0])
        knn_gain.append(stats[0][1] - stats[1][1])
    assert np.median(score_gain) > 30, score_gain
    assert np.median(knn_gain) > 0.03, knn_gain


def test_aae_learns_to_reconstruct_and_ignores_y(digits):
    """The reconstruction loss of the last of 30 epochs (300 rows) over the first's, the median
    over seeds 0-2, is under 0.6.

    Measured (seeds 0-2 at 1 and 2 threads, identical) on a 2-core machine: 0.281, 0.284, 0.307
    (median 0.284; bound 0.6). With the former 15 epochs on seed 0 alone: 0.523, 0.596, 0.589, at
    the bound.
    """
    X = digits.X_train[:300]
    kw = dict(latent_dim=4, hidden=(32,), max_epochs=30, loss="mse")  # as measured
    a = AdversarialAutoencoder(random_state=0, **kw).fit(X)
    b = AdversarialAutoencoder(random_state=0, **kw).fit(X, digits.y_train[:300])
    assert np.array_equal(a.transform(X), b.transform(X))  # y ignored (Pipelines pass it)
    assert not hasattr(a, "classes_")
    models = [a] + [AdversarialAutoencoder(random_state=s, **kw).fit(X) for s in (1, 2)]
    ratios = [m.history_[-1]["loss"] / m.history_[0]["loss"] for m in models]
    assert np.median(ratios) < 0.6, ratios


def test_gaussian_posterior_samples_in_training_and_transform_gives_the_mean(digits):
    X = digits.X_train[:200]
    model = AdversarialAutoencoder(posterior="gaussian", latent_dim=3, **FAST).fit(X)
    x = torch.from_numpy(X[:5]).to(model.device_)
    assert model.encoder_(x).shape == (5, 6)  # mean and log-variance
    assert np.array_equal(model.transform(X[:5]), model.transform(X[:5]))
    g = torch.Generator(device=model.device_).manual_seed(0)
    mu = model.module_.encode(x)
    assert not torch.equal(model.module_.code(x, g), mu)


def test_user_prior_trains_saves_by_import_path_and_lambdas_refuse_to_save(digits, tmp_path):
    X = digits.X_train[:200]
    model = AdversarialAutoencoder(prior=ring, latent_dim=2, **FAST).fit(X)
    assert np.linalg.norm(model.sample_prior(50, random_state=0), axis=1) == pytest.approx(3.0)
    model.save(tmp_path / "ring")
    config = json.loads((tmp_path / "ring" / "config.json").read_text())
    assert config["params"]["prior"] == f"{ring.__module__}:ring"
    with pytest.raises(aekit.UntrustedCodeError, match="trust_code=True"):
        aekit.load(tmp_path / "ring")  # loading imports no code unless told to
    loaded = aekit.load(tmp_path / "ring", trust_code=True)
    assert np.array_equal(loaded.sample(4, random_state=1), model.sample(4, random_state=1))
    anonymous = AdversarialAutoencoder(prior=lambda n, g: ring(n, g), latent_dim=2, **FAST).fit(X)
    with pytest.raises(ModelFileError, match=r"not importable by name.*'package\.module:function'"):
        anonymous.save(tmp_path / "lambda")
    assert not (tmp_path / "lambda" / "config.json").exists()


# -- labels: supervised and label-conditioned -----------------------------------------------------


def _supervised_stats(digits, seed, check=None):
    """One seed of the claim below: the smallest share, over the ten classes, of generated
    images that the probe assigns to the requested class, and the test score (minus BCE per
    image). ``check(model)`` runs the exact checks on the model."""
    X, y = digits.X_train, digits.y_train
    probe = LogisticRegression(max_iter=2000).fit(X, y)
    model = AdversarialAutoencoder(supervised=True, posterior="gaussian", random_state=seed,
                                   **{**MIXTURE, "prior": "gaussian"}).fit(X, y)  # fmt: skip
    if check is not None:
        check(model)
    shares = [(probe.predict(model.generate(np.full(100, c), random_state=c)) == c).mean()
              for c in range(10)]  # fmt: skip
    return {"min_share": float(min(shares)), "score": model.score(digits.X_test, digits.y_test)}


@pytest.mark.slow
def test_supervised_aae_generates_the_requested_class(digits):
    """Style from the prior, label to the decoder: a logistic regression trained on the digits
    training split (0.97 test accuracy) assigns 100 generated images of each class to it; the
    median over seeds 0-2 of the worst class's share is at least 0.7, and of the test score
    (minus the BCE deviance per image) above -12 (the mean training image as every
    reconstruction: -27.2).

    Measured with the default joint objective (seeds 0-2 at 1 and 2 threads, identical) on a
    2-core machine: worst class's share 0.95, 0.95, 0.92 (median 0.95; bound 0.7, the issue's);
    score -5.76, -6.49, -6.61 (median -6.49; bound -12). The separate generator phase
    (``generator_weight=None``, the default before) gives shares 0.94, 0.91, 0.93 and scores
    -9.16, -5.46, -5.72 (an older version of aekit measured -24.8, -19.3, -19.3 when the bound
    was -25).
    """

    def check(model):
        # the style is what transform gives; decoding needs the label
        Z = model.transform(digits.X_test[:5])
        assert Z.shape == (5, 2)
        with pytest.raises(DataError, match="pass y"):
            model.inverse_transform(Z)
        assert model.inverse_transform(Z, digits.y_test[:5]).shape == (5, 64)
        with pytest.raises(DataError, match="pass y"):
            model.score(digits.X_test)

    stats = [_supervised_stats(digits, seed, check) for seed in range(3)]
    assert np.median([s["min_share"] for s in stats]) >= 0.7, stats
    assert np.median([s["score"] for s in stats]) > -12, stats


def test_label_conditioned_prior_puts_each_class_on_its_component(digits):
    """Half the training labels given (the rest -1): labelled training codes nearest their own
    class's component, against the same model without labels (components then arbitrary).

    Measured (seeds 0, 1; 1 and 2 threads identical): 0.919, 0.941 own component, unlabelled
    rows 0.918, 0.908; without labels 0.105, 0.058. (With the separate generator phase, the
    default before: 0.892, 0.783; unlabelled 0.902, 0.758; without labels 0.087, 0.062.)
    Bound: 0.6, and 3x the unconditioned model."""
    X, y = digits.X_train, digits.y_train
    y_half = y.copy()
    y_half[np.random.default_rng(0).random(len(y)) < 0.5] = -1
    kw = dict(prior="mixture", n_components=10, random_state=0, device="cpu", **MIXTURE)
    cond = AdversarialAutoencoder(prior_labels=True, **kw).fit(X, y_half)
    free = AdversarialAutoencoder(**kw).fit(X)
    means = cond.module_.prior.means.numpy()

    def own(model, rows):
        Z = model.transform(X[rows])
        return (np.argmin(np.linalg.norm(Z[:, None] - means[None], axis=-1), 1) == y[rows]).mean()

    labelled = np.flatnonzero(y_half >= 0)
    assert own(cond, labelled) > 0.6
    assert own(cond, labelled) > 3 * own(free, labelled)
    codes = cond.sample_prior(200, random_state=0, labels=np.full(200, 7))
    assert np.linalg.norm(codes.mean(0) - means[7]) < 0.2
    images = cond.generate([7, 7, 1], random_state=0)
    assert images.shape == (3, 64)


def test_label_errors():
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    y = np.arange(40) % 4
    with pytest.raises(ParameterError, match="prior='gaussian' has none"):
        AdversarialAutoencoder(prior_labels=True, **FAST).fit(X, y)
    with pytest.raises(DataError, match="holds 4 classes and n_components=10: set n_components=4"):
        AdversarialAutoencoder(prior="mixture", prior_labels=True, **FAST).fit(X, y)
    partial = y.copy()
    partial[3] = -1
    with pytest.raises(DataError, match=r"row 3 of y is unlabelled.*SemiSupervisedAAE"):
        AdversarialAutoencoder(supervised=True, **FAST).fit(X, partial)
    with pytest.raises(ValueError, match="requires y"):
        AdversarialAutoencoder(supervised=True, **FAST).fit(X)
    plain = AdversarialAutoencoder(**FAST).fit(X)
    with pytest.raises(AttributeError, match="has no attribute 'generate'") as e:
        plain.generate([1])  # hasattr(plain, "generate") is False: its tags say why
    assert "use sample(n)" in str(e.value.__cause__)
    with pytest.raises(DataError, match="prior_labels=True"):
        plain.sample_prior(3, labels=[1, 1, 1])
    with pytest.raises(ParameterError, match="deterministic"):
        plain.sample(3, mean=False)
    with pytest.raises(ParameterError, match="tied=True"):
        AdversarialAutoencoder(supervised=True, tied=True, **FAST).fit(X, y)
    sup = AdversarialAutoencoder(supervised=True, **FAST).fit(X, y)
    with pytest.raises(DataError, match="not seen at fit time"):
        sup.generate([9])


# -- semi-supervised classification and clustering ---------------------------------------------

SEMI = dict(hidden=(128, 64), max_epochs=100, batch_size=64, validation_fraction=0, loss="bce")


@pytest.mark.slow
def test_semi_supervised_beats_the_same_network_on_the_labels_alone(digits):
    """10 labels per class (100 of 1437 rows): test accuracy of the semi-supervised AAE against
    the same encoder and head trained on those labels alone (``labels_only=True``: same optimiser,
    epochs and steps), paired by seed.

    Measured (seeds 0-2): 0.911/0.861, 0.892/0.844, 0.919/0.875; mean gain 0.047. Bound: a mean
    gain of 0.02 (under half the measured gain)."""
    X, y = digits.X_train, digits.y_train
    gains = []
    for seed in range(3):
        y_few = few_labels(y, 10, seed)
        semi = SemiSupervisedAAE(random_state=seed, **SEMI).fit(X, y_few)
        alone = SemiSupervisedAAE(labels_only=True, random_state=seed, **SEMI).fit(X, y_few)
        gains.append(semi.score(digits.X_test, digits.y_test)
                     - alone.score(digits.X_test, digits.y_test))  # fmt: skip
    assert np.mean(gains) > 0.02, gains


def test_semi_supervised_classifier_api(digits):
    X, y = digits.X_train[:300], few_labels(digits.y_train[:300], 5, 0)
    model = SemiSupervisedAAE(latent_dim=3, **FAST).fit(X, y)
    assert list(model.classes_) == list(range(10))
    proba = model.predict_proba(digits.X_test[:7])
    assert proba.shape == (7, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert np.array_equal(model.predict(digits.X_test[:7]), proba.argmax(1))
    assert model.transform(digits.X_test[:7]).shape == (7, 3)  # the style
    assert model.reconstruct(digits.X_test[:7]).shape == (7, 64)
    assert model.generate([0, 5], random_state=0).shape == (2, 64)
    assert model.sample(4, random_state=0).shape == (4, 64)
    h = model.history_[-1]
    assert {"classification_loss", "category_discriminator_accuracy",
            "style_discriminator_accuracy"} <= set(h)  # fmt: skip
    few = np.full(300, -1)
    with pytest.raises(DataError, match="every row is labelled -1"):
        SemiSupervisedAAE(**FAST).fit(X, few)


def test_clustering_finds_the_classes(digits):
    """16 clusters of the digits, no labels; accuracy with each cluster assigned its majority
    class. Measured (seeds 0-2, 100 epochs): 0.70-0.79 on the test set (1/10 by chance; k-means
    on the pixels: 0.86). Here 40 epochs, seed 0: 0.683 (bound 0.4)."""
    model = AAEClustering(n_clusters=16, random_state=0, **{**SEMI, "max_epochs": 40})
    labels = model.fit_predict(digits.X_train)
    assert np.array_equal(labels, model.labels_) and labels.dtype == np.int64
    assert cluster_accuracy(digits.y_test, model.predict(digits.X_test)) > 0.4
    assert model.predict_proba(digits.X_test[:3]).shape == (3, 16)
    assert model.generate([0, 15], random_state=0).shape == (2, 64)
    with pytest.raises(DataError, match=r"integers in 0\.\.15"):
        model.generate([16])


def test_cluster_accuracy_and_mmd_on_known_cases():
    assert cluster_accuracy([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    assert cluster_accuracy([0, 1, 0, 1], [0, 0, 0, 0]) == 0.5
    assert cluster_accuracy([0, 1, 2, 2], [0, 1, 2, 3]) == 1.0  # more clusters than classes
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    assert mmd2(A, A) == pytest.approx(0.0, abs=1e-12)
    assert mmd2(A, B) < 0.02 < mmd2(A + 1.0, B)
    # the V-statistic, written out
    h = 1.3
    k = lambda P, Q: np.exp(-((P[:, None] - Q[None]) ** 2).sum(-1) / (2 * h * h)).mean()  # noqa: E731
    assert mmd2(A, B + 0.5, bandwidth=h, chunk=64) == pytest.approx(
        k(A, A) + k(B + 0.5, B + 0.5) - 2 * k(A, B + 0.5), rel=1e-9
    )


# -- the command line (scikit-learn checks, save/load/continue: test_common.py) ----------------


def test_cli_trains_an_aae_with_a_mixture_prior_and_generates(tmp_path, capsys):
    out = tmp_path / "a"
    argv = ["train", "aae", "--data", "digits", "--prior", "mixture", "--n-components", "10",
            "--latent", "2", "--hidden", "32", "--epochs", "3", "--seed", "0", "-q", "--json",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "AdversarialAutoencoder"
    assert result["test"]["model"]["prior_mmd2"] >= 0
    assert "prior_mmd2_floor" in result["test"]["model"]
    for name in ("prior.png", "samples.png", "manifold.png", "latent.png"):
        assert (out / name).exists(), name
    model = aekit.load(out)
    assert model.prior == "mixture" and model.n_components == 10
    assert (
        main(["generate", str(out), "-n", "5", "--seed", "1", "--out", str(tmp_path / "s.npy")])
        == 0
    )
    assert np.load(tmp_path / "s.npy").shape == (5, 64)
    assert main(["generate", str(out), "--draw", "--out", str(tmp_path / "d.npy")]) == 2
    assert "deterministic" in capsys.readouterr().err


def test_cli_supervised_semi_supervised_and_clustering(tmp_path, capsys):
    sup = tmp_path / "sup"
    assert main(["train", "aae", "--data", "digits", "--set", "supervised=true", "--latent", "2",
                 "--hidden", "32", "--epochs", "2", "-q", "--out", str(sup)]) == 0  # fmt: skip
    assert (sup / "samples_by_class.png").exists() and (sup / "reconstructions.png").exists()
    assert main(["generate", str(sup), "-n", "4", "--label", "3", "--out",
                 str(tmp_path / "three.npy")]) == 0  # fmt: skip
    assert main(["generate", str(sup), "--label", "12", "--out", str(tmp_path / "x.npy")]) == 2
    assert "not seen at fit time" in capsys.readouterr().err
    semi = tmp_path / "semi"
    assert main(["train", "aae-semi", "--data", "digits", "--labeled", "50", "--hidden", "32",
                 "--epochs", "2", "-q", "--json", "--out", str(semi)]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["labeled_train_rows"] == 50 and 0 <= result["test"]["test_accuracy"] <= 1
    clu = tmp_path / "clu"
    assert main(["train", "aae-cluster", "--data", "digits", "--n-clusters", "12", "--hidden",
                 "32", "--epochs", "2", "-q", "--json", "--out", str(clu)]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["test"]["model"]["cluster_accuracy"] <= 1
    assert aekit.load(clu).n_clusters == 12
    assert (clu / "samples_by_class.png").exists()


# -- found in review: each a defect that was fixed ----------------------------------------------


def test_labels_only_validates_on_labelled_rows_or_not_at_all(digits):
    """With few labels, the validation split or validation_data may hold no labelled row: the
    baseline then monitors its training loss instead of failing mid-fit."""
    X, y = digits.X_train[:300], few_labels(digits.y_train[:300], 1, 0)
    for seed in range(5):
        model = SemiSupervisedAAE(labels_only=True, **{**FAST, "random_state": seed}).fit(X, y)
        assert model.n_epochs_ == 3
    model = SemiSupervisedAAE(labels_only=True, **FAST).fit(X, y, validation_data=X[:50])
    assert "val_loss" not in model.history_[-1]
    model.fit(X, y, validation_data=(X[:50], digits.y_train[:50]))
    assert "val_loss" in model.history_[-1]


def test_sample_pairs_each_class_with_its_component(digits, monkeypatch):
    X, y = digits.X_train[:200], digits.y_train[:200]
    model = AdversarialAutoencoder(supervised=True, prior="mixture", prior_labels=True, **FAST)
    model.fit(X, y)
    seen = []
    decode = model.module_.decode
    monkeypatch.setattr(
        model.module_, "decode", lambda z, yy: seen.append((z, yy)) or decode(z, yy)
    )
    model.sample(200, random_state=0)
    z, labels = seen[0]
    means = model.module_.prior.means.to(z.device)
    nearest = torch.cdist(z, means).argmin(1)
    assert (nearest == labels).float().mean() > 0.95


def test_set_params_then_partial_fit_applies_the_adversarial_settings(digits, tmp_path):
    X = digits.X_train[:200]
    model = AdversarialAutoencoder(**FAST).fit(X)
    model.set_params(gradient_penalty=5.0, discriminator_noise=0.3, label_smoothing=0.2,
                     discriminator_lr=3e-4, prior="uniform", generator_weight=5.0)  # fmt: skip
    model.partial_fit(X)
    m, opts = model.module_, model._trainer.optimizers
    assert (m.penalty, m.noise, m.label_smoothing, m.generator_weight) == (5.0, 0.3, 0.2, 5.0)
    assert opts["discriminator"].param_groups[0]["lr"] == pytest.approx(3e-4)
    assert m.prior.high == 2.0  # the uniform prior
    # the scheme itself (its optimisers) is the network's: changing it needs a new fit
    model.set_params(generator_weight=None)
    with pytest.raises(
        ParameterError,
        match=r"generator_weight=None, but the model was built "
        r"to train the generator's loss in the reconstruction phase.*Fit again",
    ):
        model.partial_fit(X)
    separate = AdversarialAutoencoder(generator_weight=None, **FAST).fit(X)
    separate.set_params(generator_lr=3e-4).partial_fit(X)
    assert separate._trainer.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(3e-4)
    with pytest.raises(ParameterError, match="built to train a separate generator phase"):
        separate.set_params(generator_lr=None, generator_weight=1.0).partial_fit(X)
    with pytest.raises(ParameterError, match="save would go on with that scheme"):
        separate.save(tmp_path / "m")  # its config would build two phases for three states
    assert not (tmp_path / "m").exists()


def test_the_joint_phase_minimises_reconstruction_plus_weighted_generator_loss(digits):
    """With a generator_weight the reconstruction phase's sum is ``loss + w * generator_loss``
    on the same codes; the history and validation keep the reconstruction alone as ``loss``."""
    X = digits.X_train[:200]
    for model in (AdversarialAutoencoder(generator_weight=7.0, **FAST),
                  AAEClustering(n_clusters=4, generator_weight=7.0, **FAST)):  # fmt: skip
        model.fit(X)
        m = model.module_.train()
        x = torch.as_tensor(X[:64])
        out = m.reconstruction(x, torch.Generator().manual_seed(0))
        assert set(out) == {"loss", "generator_loss", "objective"}
        assert torch.allclose(out["objective"], out["loss"] + 7.0 * out["generator_loss"])
        again = m.reconstruction(x, torch.Generator().manual_seed(0))
        assert torch.equal(out["generator_loss"], again["generator_loss"])
        fooled = m.fool(x, torch.Generator().manual_seed(0))["loss"]  # the separate phase's
        assert torch.allclose(out["generator_loss"], fooled)
        assert set(m.eval().reconstruction(x, torch.Generator())) == {"loss"}
        h = model.history_[-1]
        assert "objective" not in h and np.isfinite(h["generator_loss"])


def test_generator_lr_needs_the_separate_phase_and_old_files_keep_it(digits, tmp_path):
    X = digits.X_train[:200]
    with pytest.raises(ParameterError, match=r"generator_lr=0.0002 is the rate of a separate "
                       r"generator phase.*Fit with generator_weight=None"):  # fmt: skip
        AdversarialAutoencoder(generator_lr=2e-4, **FAST).fit(X)
    # A model saved before generator_weight existed trained three phases: it loads with None,
    # and its saved optimiser states (one per phase) resume training.
    old = AdversarialAutoencoder(generator_weight=None, **FAST).fit(X)
    old.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["params"]["generator_weight"]
    config_path.write_text(json.dumps(config))  # as written before the parameter
    loaded = aekit.load(tmp_path / "m")
    assert loaded.generator_weight is None
    assert np.array_equal(loaded.transform(X), old.transform(X))
    loaded.partial_fit(X)
    assert [p.name for p in loaded._trainer.phases] == ["reconstruction", "discriminator",
                                                         "generator"]  # fmt: skip
    new = aekit.load(AdversarialAutoencoder(**FAST).fit(X).save(tmp_path / "n"))
    assert new.generator_weight == 30.0


def test_partial_fit_streams_labels_classes_and_unlabelled_batches(digits):
    X, y = digits.X_train[:300], digits.y_train[:300]
    model = AdversarialAutoencoder(prior="mixture", prior_labels=True, **FAST)
    first = y < 5  # the first batch lacks half the classes
    model.partial_fit(X[first], y[first], classes=np.arange(10))
    assert list(model.classes_) == list(range(10))
    model.partial_fit(X[~first])  # no labels at all: the discriminator's "unlabelled" slot
    model.partial_fit(X[~first], np.full((~first).sum(), -1))
    assert model.n_epochs_ == 3
    semi = SemiSupervisedAAE(**FAST).partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(DataError, match="SemiSupervisedAAE needs some labelled rows"):
        semi.partial_fit(X, np.full(300, -1))


def test_a_user_prior_is_tried_before_training(tmp_path, capsys):
    X = np.random.default_rng(0).random((20, 4), dtype=np.float32)
    with pytest.raises(ParameterError, match=r"failed on a test draw.*\(n, generator\)"):
        AdversarialAutoencoder(prior="math:sqrt", **FAST).fit(X)
    out = tmp_path / "bad"
    assert main(["train", "aae", "--data", "digits", "--prior", "math:sqrt", "-q",
                 "--trust-code", "--out", str(out)]) == 2  # fmt: skip
    assert "failed on a test draw" in capsys.readouterr().err
    assert not out.exists()


def test_interpolate_and_cli_for_a_supervised_model(digits, tmp_path, capsys):
    X, y = digits.X_train[:200], digits.y_train[:200]
    model = AdversarialAutoencoder(supervised=True, **FAST).fit(X, y)
    assert model.interpolate(X[0], X[1], steps=4, y=3).shape == (4, 64)
    with pytest.raises(DataError, match="pass y"):
        model.interpolate(X[0], X[1])
    run = tmp_path / "sup"
    assert main(["train", "aae", "--data", "digits", "--set", "supervised=true", "--hidden",
                 "16", "--epochs", "1", "-q", "--no-plots", "--out", str(run)]) == 0  # fmt: skip
    assert main(["reconstruct", str(run), "--split", "test", "--out", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (360, 64)
    np.save(tmp_path / "nolabels.npy", digits.X_test[:20] * 16)
    assert main(["plot", str(run), "--data", str(tmp_path / "nolabels.npy"), "--out-dir",
                 str(tmp_path / "figs")]) == 0  # fmt: skip
    assert main(["reconstruct", str(run), "--data", str(tmp_path / "nolabels.npy"), "--out",
                 str(tmp_path / "r2.npy")]) == 2  # fmt: skip
    assert "label" in capsys.readouterr().err
    assert main(["train", "aae-cluster", "--data", "digits", "--labeled", "50", "-q",
                 "--out", str(tmp_path / "c")]) == 2  # fmt: skip
    assert "--labeled" in capsys.readouterr().err
