"""ELBO and beta-ELBO: definitions, analytic vs Monte Carlo KL (value and gradient)."""

import pytest
import torch

from elbolab.distributions import rsample
from elbolab.errors import ConfigError
from elbolab.models.vae import VAE
from elbolab.objectives import elbo, elbo_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n=4, d=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < 0.4).to(dtype)


def _model(prior="normal", dtype=torch.float64, **kw):
    kw.setdefault("hidden", (8,))
    return VAE(6, 2, prior=prior, n_pseudo=3, generator=11, dtype=dtype, **kw)


def test_terms_and_beta():
    m, x = _model(), _data()
    r1 = elbo(m, x, generator=0, beta=1.0, n_samples=3)
    torch.testing.assert_close(r1["beta_elbo"], r1["elbo"], rtol=0, atol=0)
    torch.testing.assert_close(r1["elbo"], r1["reconstruction"] - r1["kl"])
    torch.testing.assert_close(r1["elbo"], r1["elbo_per_datum"].sum())
    torch.testing.assert_close(r1["loss"], -r1["elbo"])
    assert r1["kl_analytic"] and r1["beta"] == 1.0 and r1["elbo_per_datum"].shape == (4,)
    r2 = elbo(m, x, generator=0, beta=0.25, n_samples=3)
    torch.testing.assert_close(r2["elbo"], r1["elbo"])  # same samples: beta only reweights
    torch.testing.assert_close(r2["beta_elbo"], r2["reconstruction"] - 0.25 * r2["kl"])
    torch.testing.assert_close(elbo_loss(m, x, 0, beta=0.25, n_samples=3), -r2["beta_elbo"])
    assert (r1["kl_per_datum"] >= 0).all()


def test_explicit_generator_no_global_rng():
    m, x = _model(), _data()
    state = torch.get_rng_state()
    a = elbo(m, x, generator=torch.Generator().manual_seed(3))["elbo"]
    torch.manual_seed(12345)  # the global RNG must not matter
    b = elbo(m, x, generator=3)["elbo"]
    assert torch.equal(a, b)
    torch.set_rng_state(state)
    elbo(m, x, generator=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_analytic_and_monte_carlo_kl_agree_in_value():
    m, x = _model(), _data()
    s = 20000
    mc = elbo(m, x, generator=1, n_samples=s, analytic_kl=False)
    exact = elbo(m, x, generator=1, n_samples=s)
    assert not mc["kl_analytic"] and exact["kl_analytic"]
    # the MC KL is the sample mean of log q(z|x) - log p(z) on the same draw
    with torch.no_grad():
        q, p = m.encode(x), m.prior()
        z = rsample(q, s, torch.Generator().manual_seed(1))
        terms = q.log_prob(z) - p.log_prob(z)
    torch.testing.assert_close(mc["kl_per_datum"].detach(), terms.mean(0))
    se = terms.std(0) / s**0.5
    assert ((mc["kl_per_datum"] - exact["kl_per_datum"]).abs().detach() < 4 * se).all()
    # same samples => same reconstruction term
    torch.testing.assert_close(mc["reconstruction"], exact["reconstruction"])


def test_analytic_and_monte_carlo_kl_agree_in_gradient():
    m, x = _model(), _data(n=3)
    enc = list(m.encoder.parameters())

    def grad(analytic, seed):
        r = elbo(m, x, generator=seed, n_samples=50, analytic_kl=analytic)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(r["kl"], enc)])

    exact = grad(True, 0)
    reps = torch.stack([grad(False, seed) for seed in range(200)])
    mean, se = reps.mean(0), reps.std(0) / 200**0.5
    zscore = (mean - exact).abs() / (se + 1e-12)
    assert zscore.max() < 5.0, zscore.max()
    assert torch.allclose(mean, exact, atol=0.05 * exact.abs().max())


def test_vamp_prior_uses_monte_carlo_kl_and_is_differentiable():
    m, x = _model("vamp"), _data()
    r = elbo(m, x, generator=0, n_samples=2)  # analytic_kl=True, but no closed form
    assert not r["kl_analytic"]
    r["loss"].backward()
    assert m.pseudo_inputs.grad is not None


def test_float32_model():
    m, x = _model(dtype=torch.float32), _data(dtype=torch.uint8)  # uint8 data are cast
    r = elbo(m, x, generator=0)
    assert r["elbo"].dtype == torch.float32 and torch.isfinite(r["elbo"])


def test_elbo_below_exact_log_marginal():
    m = VAE(5, 2, hidden=(), likelihood="gaussian", sigma2=0.5, dtype=torch.float64, generator=2)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = elbo(m, x, generator=0, n_samples=4000)
    exact = m.exact_log_marginal(x)
    assert (r["elbo_per_datum"].detach() < exact).all()


@pytest.mark.parametrize(
    "kwargs", [{"beta": -1.0}, {"beta": float("nan")}, {"n_samples": 0}, {"n_samples": 1.5}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        elbo(_model(), _data(), generator=0, **kwargs)


def test_bad_shape():
    with pytest.raises(ConfigError):
        elbo(_model(), torch.zeros(6), generator=0)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_result_carries_its_terms_and_takes_a_posterior_back(prior):
    m, x = _model(prior), _data(n=5)
    r = elbo(m, x, generator=2, n_samples=3)
    # the per-sample reconstruction, the posterior and the prior it used, by name
    assert r["reconstruction_per_sample"].shape == (3, 5)
    torch.testing.assert_close(
        r["reconstruction_per_sample"].mean(0), r["reconstruction_per_datum"]
    )
    torch.testing.assert_close(r["posterior"].mean, m.encode(x).mean)
    assert r["prior"].event_shape == (2,)
    # the same posterior passed back gives the same numbers without encoding x again
    calls = []
    m.encode = lambda xb: calls.append(xb) or VAE.encode(m, xb)
    again = elbo(m, x, generator=2, n_samples=3, posterior=r["posterior"])
    assert all(c is m.pseudo_inputs for c in calls)  # only a VampPrior encodes (its u_k)
    for key in ("elbo", "reconstruction", "kl"):
        assert torch.equal(again[key], r[key]), key


def test_a_posterior_of_other_rows_is_refused():
    m, x = _model(), _data(n=5)
    q = m.encode(_data(n=4))
    with pytest.raises(ConfigError, match=r"posterior must be q\(z \| x\) with batch shape \(5,\)"):
        elbo(m, x, generator=0, posterior=q)
