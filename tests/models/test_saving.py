"""Saving and loading models: round trips, the plain-data file format, bad files, RunDir."""

import pickle
from pathlib import Path

import pytest
import torch

import elbolab.models.saving as saving
from elbolab.diagnostics import log_likelihood
from elbolab.errors import ConfigError, DataError
from elbolab.models import VAE, LinearVAE, load, save, train
from elbolab.models.amortized import MLP, Amortized, EnsembleMLP, Linearized, mean_only
from elbolab.objectives import elbo_loss
from elbolab.report import RunDir

pytestmark = pytest.mark.usefixtures("one_torch_thread")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _binary(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < 0.3).to(torch.float32)


def _perturb(model, seed=123):
    """Move every parameter and buffer away from any seed's initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.add_(0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device))
    return model


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key].cpu(), sb[key].cpu()), key


def _leftovers(folder):
    return [p.name for p in Path(folder).rglob("*.tmp")]


VAE_CASES = {
    "normal-bernoulli": dict(data_dim=12, latent_dim=3, hidden=(16, 8)),
    "vamp": dict(data_dim=12, latent_dim=3, hidden=(10,), prior="vamp", n_pseudo=4),
    "gaussian-learned-sigma2": dict(
        data_dim=12,
        latent_dim=2,
        hidden=(8,),
        likelihood="gaussian",
        learn_sigma2=True,
        sigma2=0.3,
    ),
    "decoder-hidden": dict(
        data_dim=12,
        latent_dim=3,
        hidden=(16, 8),
        decoder_hidden=(5,),
        activation="relu",
        logvar_min=-6.0,
        logvar_max=4.0,
    ),
    "linear-decoder-gaussian": dict(
        data_dim=12, latent_dim=2, hidden=(8,), decoder_hidden=(), likelihood="gaussian"
    ),
    "float64": dict(
        data_dim=12, latent_dim=3, hidden=(6,), dtype=torch.float64, prior="vamp", n_pseudo=3
    ),
}


@pytest.mark.parametrize("case", sorted(VAE_CASES))
def test_vae_round_trip(tmp_path, case):
    kwargs = VAE_CASES[case]
    m = _perturb(VAE(**kwargs, generator=7))
    path = save(m, tmp_path / "m.pt")
    assert path == tmp_path / "m.pt" and path.is_file()
    r = load(path)

    assert type(r) is VAE and not r.training
    _same_state(m, r)
    for attr in ("data_dim", "latent_dim", "hidden", "decoder_hidden", "likelihood"):
        assert getattr(r, attr) == getattr(m, attr), attr
    for attr in ("prior_kind", "n_pseudo", "activation", "logvar_min", "logvar_max"):
        assert getattr(r, attr) == getattr(m, attr), attr
    assert isinstance(r.log_sigma2, torch.nn.Parameter) == kwargs.get("learn_sigma2", False)
    assert r.sigma2 == m.sigma2

    x = _binary(9, 12, 1)
    m.eval()
    with torch.no_grad():
        qm, qr = m.encode(x), r.encode(x)
        assert qr.loc.dtype == m.encoder[0].weight.dtype
        assert torch.equal(qm.loc, qr.loc) and torch.equal(qm.scale, qr.scale)
        z = qm.sample((3,), generator=torch.Generator().manual_seed(2))
        assert torch.equal(m.decode(z).log_prob(x), r.decode(z).log_prob(x))
        assert torch.equal(m.decode(z).mean, r.decode(z).mean)
        assert torch.equal(m.prior().log_prob(z), r.prior().log_prob(z))
    if case == "linear-decoder-gaussian":
        assert torch.equal(m.exact_log_marginal(x), r.exact_log_marginal(x))


def test_file_is_plain_data(tmp_path):
    m = _perturb(VAE(6, 2, hidden=(4,), prior="vamp", n_pseudo=2, generator=1))
    save(m, tmp_path / "m.pt")
    # weights_only: no pickled classes, only plain values and tensors.
    obj = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(obj) == {"format", "version", "class", "spec", "state"}
    assert obj["format"] == "elbolab-model" and obj["version"] == 1 and obj["class"] == "VAE"
    assert obj["spec"] == {
        "data_dim": 6,
        "latent_dim": 2,
        "hidden": [4],
        "decoder_hidden": [4],
        "likelihood": "bernoulli",
        "learn_sigma2": False,
        "prior": "vamp",
        "n_pseudo": 2,
        "activation": "tanh",
        "logvar_min": -20.0,
        "logvar_max": 10.0,
        "dtype": "float32",
    }
    assert set(obj["state"]) == set(m.state_dict())
    assert all(t.device.type == "cpu" for t in obj["state"].values())
    assert not _leftovers(tmp_path)


def test_linear_vae_round_trip(tmp_path):
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for learn in (True, False):
        m = _perturb(LinearVAE(5, 2, sigma2=0.7, learn_sigma2=learn, generator=3))
        r = load(save(m, tmp_path / f"lin{learn}.pt"))
        assert type(r) is LinearVAE and not r.training
        _same_state(m, r)
        assert isinstance(r.log_sigma2, torch.nn.Parameter) == learn
        assert r.W.dtype == torch.float64
        with torch.no_grad():
            assert torch.equal(m.encode(x).mean, r.encode(x).mean)
            assert torch.equal(m.encode(x).stddev, r.encode(x).stddev)
            z = m.encode(x).mean
            assert torch.equal(m.decode(z).log_prob(x), r.decode(z).log_prob(x))
            assert torch.equal(m.prior().log_prob(z), r.prior().log_prob(z))
            assert torch.equal(m.elbo_analytic(x)["elbo"], r.elbo_analytic(x)["elbo"])
            assert torch.equal(m.log_prob(x), r.log_prob(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(3, 4, width=8, depth=2, generator=5),
        lambda: MLP(
            3,
            4,
            width=8,
            depth=1,
            activation="tanh",
            parameterization="standard",
            generator=5,
            dtype=torch.float64,
        ),
        lambda: EnsembleMLP([4, 5, 6], 3, 2, width=7, depth=2, activation="elu"),
        lambda: Amortized(MLP(3, 4, width=8, generator=5), "mean_scale"),
        lambda: Amortized(MLP(3, 4, width=8, generator=5, dtype=torch.float64), "natural"),
    ],
    ids=["mlp-ntk", "mlp-standard-f64", "ensemble", "amortized", "amortized-natural"],
)
def test_amortized_family_round_trip(tmp_path, make):
    m = _perturb(make())
    r = load(save(m, tmp_path / "m.pt"))
    assert type(r) is type(m)
    _same_state(m, r)
    dtype = next(m.parameters()).dtype
    x = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    with torch.no_grad():
        a, b = m(x), r(x)
    if isinstance(m, Amortized):
        assert torch.equal(a.loc, b.loc) and torch.equal(a.scale, b.scale)
    else:
        assert torch.equal(a, b)


def test_linearized_amortized_round_trip(tmp_path):
    q = Amortized(Linearized(MLP(3, 4, width=8, generator=5, dtype=torch.float64)))
    with torch.no_grad():
        for d in q.net.delta:
            d.add_(
                0.05
                * torch.randn(d.shape, generator=torch.Generator().manual_seed(1), dtype=d.dtype)
            )
    r = load(save(q, tmp_path / "lin.pt"))
    assert isinstance(r.net, Linearized)
    _same_state(q, r)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(q(x).loc, r(x).loc, rtol=0, atol=1e-12)
        assert torch.allclose(q(x).scale, r(x).scale, rtol=0, atol=1e-12)
    # theta_0 is the loaded base, not the rebuilt one's initial weights:
    assert r.net.displacement() == pytest.approx(q.net.displacement())
    assert all(not p.requires_grad for p in r.net.base.parameters())


def test_train_save_reload_same_log_likelihood(tmp_path):
    x = _binary(120, 10, 0)
    m = VAE(10, 2, hidden=(12,), generator=4)
    train(
        m,
        elbo_loss,
        x[:100],
        x[100:],
        generator=1,
        epochs=3,
        batch_size=20,
        lr=1e-2,
        progress=False,
    )
    m.eval()
    before = log_likelihood(m, x[100:], k=50, generator=3, progress=False)
    path = save(m, tmp_path / "trained.pt")
    after = log_likelihood(load(path, device="cpu"), x[100:], k=50, generator=3, progress=False)
    assert after["log_likelihood"] == before["log_likelihood"]
    assert (after["per_datum"] == before["per_datum"]).all()


def test_load_keeps_the_global_rng(tmp_path):
    path = save(_perturb(MLP(3, 2, width=4, parameterization="standard")), tmp_path / "m.pt")
    state = torch.random.get_rng_state()
    load(path)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_save_replaces_an_existing_file_and_creates_its_folder(tmp_path):
    target = tmp_path / "new" / "folder" / "m.pt"
    save(VAE(4, 1, hidden=(3,), generator=1), target)
    m2 = _perturb(VAE(4, 1, hidden=(3,), generator=2))
    save(m2, target)
    _same_state(m2, load(target))
    assert not _leftovers(tmp_path)


# -- what save refuses: nothing is written ---------------------------------------------------


class _MyVAE(VAE):
    pass


@pytest.mark.parametrize(
    "model, match",
    [
        (torch.nn.Linear(3, 2), r"torch\.nn\.modules\.linear\.Linear.*supports VAE, LinearVAE"),
        (_MyVAE(4, 1, hidden=(3,)), "_MyVAE.*supports VAE"),
        (Amortized(MLP(3, 2, width=4), mean_only(0.5)), "family"),
        (Amortized(torch.nn.Linear(3, 4)), "net is an MLP"),
    ],
    ids=["linear", "vae-subclass", "mean-only-family", "amortized-linear"],
)
def test_unsupported_models_raise_before_writing(tmp_path, model, match):
    target = tmp_path / "m.pt"
    with pytest.raises(ConfigError, match=match):
        save(model, target)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_model_leaves_the_previous_file(tmp_path):
    m = _perturb(VAE(4, 1, hidden=(3,), generator=1))
    target = save(m, tmp_path / "m.pt")
    with pytest.raises(ConfigError):
        save(torch.nn.Linear(2, 2), target)
    _same_state(m, load(target))


def test_failing_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    m = _perturb(VAE(4, 1, hidden=(3,), generator=1))
    target = save(m, tmp_path / "m.pt")

    def half(obj, fh):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(saving.torch, "save", half)
    with pytest.raises(OSError, match="disk full"):
        save(VAE(4, 1, hidden=(3,), generator=2), target)
    with pytest.raises(OSError, match="disk full"):
        save(VAE(4, 1, hidden=(3,), generator=2), tmp_path / "other.pt")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    _same_state(m, load(target))


def test_save_refuses_a_directory_and_a_non_path(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        save(VAE(4, 1, hidden=(3,)), tmp_path)
    with pytest.raises(ConfigError, match="path"):
        save(VAE(4, 1, hidden=(3,)), None)


# -- what load refuses: one DataError naming the file -----------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A valid model file and its content."""
    path = save(_perturb(VAE(6, 2, hidden=(4,), generator=1)), tmp_path / "good.pt")
    return path, torch.load(path, weights_only=True)


def _write(path, obj):
    torch.save(obj, path)
    return path


def _load_error(path, match):
    with pytest.raises(DataError, match=match) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert err.value.path == path
    return err.value


def test_missing_file(tmp_path):
    _load_error(tmp_path / "nope.pt", "no such model file")
    _load_error(tmp_path, "not a file")


def test_corrupt_and_truncated_files(tmp_path, saved):
    path, _ = saved
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a torch file at all" * 10)
    _load_error(garbage, "cannot read as an elbolab model file")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _load_error(truncated, "cannot read as an elbolab model file")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _load_error(empty, "cannot read")


def test_foreign_files(tmp_path):
    # A torch file of someone else's, a pickled module (needs weights_only=False), a pickle.
    _load_error(_write(tmp_path / "a.pt", {"weight": torch.ones(2)}), "not an elbolab model")
    _load_error(_write(tmp_path / "b.pt", [1, 2]), "not an elbolab model")
    _load_error(_write(tmp_path / "c.pt", torch.nn.Linear(2, 2)), "cannot read")
    plain = tmp_path / "d.pkl"
    plain.write_bytes(pickle.dumps({"format": "elbolab-model"}))
    _load_error(plain, "cannot read")


def test_unknown_class_and_newer_version(tmp_path, saved):
    _, obj = saved
    _load_error(
        _write(tmp_path / "a.pt", {**obj, "class": "Transformer"}),
        "unknown model class 'Transformer'.*VAE",
    )
    _load_error(_write(tmp_path / "b.pt", {**obj, "version": 2}), "version 2, newer")
    _load_error(_write(tmp_path / "c.pt", {**obj, "version": "1"}), "invalid format version")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s.pop("latent_dim"), r"lacks \['latent_dim'\]"),
        (lambda s: s.update(extra=1), r"unknown \['extra'\]"),
        (lambda s: s.update(hidden="44"), "spec.hidden"),
        (lambda s: s.update(dtype="int64"), "spec.dtype"),
        (lambda s: s.update(dtype=[1]), "spec.dtype"),
        (lambda s: s.update(data_dim=2.5), "spec.data_dim"),
        (lambda s: s.update(likelihood="poisson"), "does not rebuild a model.*likelihood"),
        (lambda s: s.update(data_dim=0), "does not rebuild a model.*data_dim"),
        (lambda s: s.update(data_dim=7), r"state's encoder.0.weight is .*\(4, 6\).*\(4, 7\)"),
        (lambda s: s.update(dtype="float64"), "state's .* is torch.float32 .* needs torch.float64"),
        (lambda s: s.update(prior="vamp", n_pseudo=3), r"missing \['pseudo_inputs'\]"),
    ],
)
def test_bad_spec(tmp_path, saved, change, match):
    _, obj = saved
    spec = dict(obj["spec"])
    change(spec)
    _load_error(_write(tmp_path / "bad.pt", {**obj, "spec": spec}), match)


def test_spec_not_a_dict(tmp_path, saved):
    _, obj = saved
    _load_error(_write(tmp_path / "a.pt", {**obj, "spec": [1, 2]}), "spec is a list")
    _load_error(
        _write(tmp_path / "b.pt", {k: v for k, v in obj.items() if k != "spec"}),
        "spec is a NoneType",
    )


def test_state_that_does_not_fit(tmp_path, saved):
    _, obj = saved
    state = dict(obj["state"])
    state.pop("decoder.0.bias")
    _load_error(_write(tmp_path / "a.pt", {**obj, "state": state}), r"missing \['decoder.0.bias'\]")
    state = {**obj["state"], "surplus": torch.zeros(1)}
    _load_error(_write(tmp_path / "b.pt", {**obj, "state": state}), r"unknown \['surplus'\]")
    state = {**obj["state"], "log_sigma2": "zero"}
    _load_error(_write(tmp_path / "c.pt", {**obj, "state": state}), "dict of named tensors")


def test_bad_device_is_a_config_error(saved):
    path, _ = saved
    with pytest.raises(ConfigError, match="device"):
        load(path, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            load(path, device="cuda")


# -- RunDir ----------------------------------------------------------------------------------


def test_rundir_save_model(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert rd.models == rd.path / "models" and not rd.models.exists()
    m = _perturb(VAE(6, 2, hidden=(4,), generator=1))
    path = rd.save_model("vae_normal", m)
    assert path == rd.path / "models" / "vae_normal.pt" and path.is_file()
    assert rd.save_model("vae_normal.pt", m) == path
    _same_state(m, load(path))
    _same_state(m, rd.load_model("vae_normal"))
    with pytest.raises(ValueError, match="model name"):
        rd.save_model("../escape", m)
    with pytest.raises(DataError, match="no such model file"):
        rd.load_model("absent")
    assert not _leftovers(tmp_path)


def test_rundir_with_only_an_empty_models_folder_is_blank(tmp_path):
    (tmp_path / "run" / "models").mkdir(parents=True)
    RunDir(tmp_path / "run")  # a crash before the first model was written: not refused


# -- CUDA ------------------------------------------------------------------------------------


@needs_cuda
def test_cuda_model_loads_on_cpu(tmp_path):
    m = _perturb(VAE(6, 2, hidden=(4,), prior="vamp", n_pseudo=3, generator=1)).to("cuda")
    lin = Amortized(Linearized(MLP(3, 4, width=8, generator=5)))
    path = save(m, tmp_path / "gpu.pt")
    obj = torch.load(path, weights_only=True)  # no map_location needed: stored on the CPU
    assert all(t.device.type == "cpu" for t in obj["state"].values())
    r = load(path)
    assert next(r.parameters()).device.type == "cpu"
    _same_state(m, r)
    x = _binary(5, 6, 0)
    with torch.no_grad():
        assert torch.allclose(m.encode(x.cuda()).loc.cpu(), r.encode(x).loc, atol=1e-6)
    back = load(path, device="cuda")
    assert next(back.parameters()).device.type == "cuda"
    _same_state(m, back)
    # Linearized keeps theta_0 outside the state: load rebuilds it on the target device.
    rl = load(save(lin, tmp_path / "lin.pt"), device="cuda")
    xs = torch.randn(4, 3)
    with torch.no_grad():
        assert torch.allclose(rl(xs.cuda()).loc.cpu(), lin(xs).loc, atol=1e-6)
