"""IWAE: k = 1 is the ELBO, monotone in k, below exact log p(x); DReG unbiased, lower variance."""

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.models.vae import VAE
from elbolab.objectives import elbo, iwae, iwae_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _binary(n=4, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < 0.4).to(torch.float64)


def _linear_gaussian():
    """Linear-Gaussian VAE (log p(x) exact) and data from a different model."""
    m = VAE(5, 2, hidden=(), likelihood="gaussian", sigma2=0.3, dtype=torch.float64, generator=7)
    g = torch.Generator().manual_seed(1)
    x = 1.5 * torch.randn(3, 5, generator=g, dtype=torch.float64)
    return m, x


def test_k1_equals_elbo_on_the_same_samples():
    for prior in ("normal", "vamp"):
        m = VAE(6, 2, hidden=(8,), prior=prior, n_pseudo=3, generator=3, dtype=torch.float64)
        x = _binary()
        r = iwae(m, x, 1, generator=torch.Generator().manual_seed(5))
        e = elbo(m, x, generator=torch.Generator().manual_seed(5), analytic_kl=False)
        torch.testing.assert_close(r["iwae_per_datum"], e["elbo_per_datum"], rtol=0, atol=1e-12)
        torch.testing.assert_close(r["iwae"], r["elbo"], rtol=0, atol=1e-12)


def _linear_gaussian_elbo(m, x):
    """Closed-form ELBO of the linear-Gaussian VAE (decoder W z + b, noise sigma2)."""
    q = m.encode(x)
    mu, s = q.base_dist.loc, q.base_dist.scale
    w = m.decoder[0].weight
    s2 = m.sigma2
    rec = m.decode(mu).log_prob(x) - 0.5 * ((w**2) @ (s**2).T).sum(0) / s2
    kl = 0.5 * (mu**2 + s**2 - 1).sum(1) - s.log().sum(1)
    return rec - kl


def test_k1_equals_analytic_elbo_in_expectation():
    m, x = _linear_gaussian()
    with torch.no_grad():
        lw = iwae(m, x, 20000, generator=0)["log_weights"]  # 20000 independent IWAE-1 values
        exact = _linear_gaussian_elbo(m, x)
        many = elbo(m, x, generator=1, n_samples=20000)["elbo_per_datum"]
    se = lw.std(0) / lw.shape[0] ** 0.5
    assert ((lw.mean(0) - exact).abs() < 4 * se).all()
    assert ((many - exact).abs() < 4 * se).all()  # analytic-KL ELBO, MC reconstruction


def test_iwae_rises_with_k_and_stays_below_log_px():
    m, x = _linear_gaussian()
    exact = m.exact_log_marginal(x)  # (3,)
    reps = 400
    xr = x.repeat(reps, 1)
    means, ses = [], []
    with torch.no_grad():
        for j, k in enumerate((1, 3, 10, 50, 300)):
            v = iwae(m, xr, k, generator=100 + j)["iwae_per_datum"].reshape(reps, 3)
            means.append(v.mean(0))
            ses.append(v.std(0) / reps**0.5)
            # a single estimate is a log-mean of unbiased p(x) estimates; on average below
            assert (v.mean(0) < exact + 3 * ses[-1]).all(), k
    for a, b, sa, sb in zip(means[:-1], means[1:], ses[:-1], ses[1:], strict=True):
        assert (b > a - 3 * (sa**2 + sb**2).sqrt()).all()
    assert (means[-1] - means[0] > 10 * ses[0]).all()  # a real gap that k closes
    # and it approaches log p(x): the gap at k=300 is a small fraction of the k=1 gap
    assert ((exact - means[-1]) < 0.2 * (exact - means[0])).all()
    iw = iwae(m, x, 100, generator=0)
    assert (iw["elbo_per_datum"] <= iw["iwae_per_datum"] + 1e-12).all()  # Jensen, same draw


def _flat_grads(params):
    return torch.cat([p.grad.reshape(-1).clone() for p in params])


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_dreg_unbiased_lower_variance_and_standard_for_decoder(prior):
    m = VAE(6, 2, hidden=(6,), prior=prior, n_pseudo=3, generator=9, dtype=torch.float64)
    x0 = _binary(n=2)
    # Each call sums the gradients of r independent replicates of the 2 data points, so
    # G calls give G independent draws of the r-replicate gradient (cheaper than G*r calls).
    k, r, groups = 10, 10, 100
    x = x0.repeat(r, 1)
    enc = list(m.encoder.parameters())
    dec = list(m.decoder.parameters()) + ([m.pseudo_inputs] if prior == "vamp" else [])
    std_enc, dreg_enc = [], []
    for seed in range(groups):
        out = {}
        for dreg in (False, True):
            m.zero_grad()
            res = iwae(m, x, k, generator=seed, dreg=dreg)
            res["loss"].backward()
            out[dreg] = (_flat_grads(enc), _flat_grads(dec), res)
        # decoder (and pseudo-inputs): DReG keeps the standard IWAE gradient exactly
        torch.testing.assert_close(out[True][1], out[False][1], rtol=1e-10, atol=1e-12)
        # the surrogate's value is -IWAE
        torch.testing.assert_close(out[True][2]["loss"], -out[False][2]["iwae"].detach())
        std_enc.append(out[False][0])
        dreg_enc.append(out[True][0])
    s, d = torch.stack(std_enc), torch.stack(dreg_enc)
    # unbiased: paired differences (same samples) have mean zero within standard errors
    diff = d - s
    z = diff.mean(0).abs() / (diff.std(0) / groups**0.5 + 1e-15)
    assert z.max() < 5.0, float(z.max())
    if prior == "normal":
        # lower variance for the encoder, in total and for most coordinates
        assert d.var(0).sum() < 0.7 * s.var(0).sum()
        assert (d.var(0) <= s.var(0)).float().mean() > 0.8
    # With the VampPrior the encoder also enters p(z), and the score term that DReG drops
    # partly cancels that dependence: still unbiased, but no variance guarantee (here
    # the encoder's log-variance weights get a noisier gradient). See objectives/iwae.py.


def test_dreg_with_vamp_prior_runs_and_loss_gradient_only():
    m = VAE(6, 2, hidden=(6,), prior="vamp", n_pseudo=3, generator=9, dtype=torch.float64)
    x = _binary()
    r = iwae(m, x, 5, generator=0, dreg=True)
    assert not r["iwae"].requires_grad and r["loss"].requires_grad
    r["loss"].backward()
    assert m.pseudo_inputs.grad is not None and torch.isfinite(m.pseudo_inputs.grad).all()
    torch.testing.assert_close(
        iwae_loss(m, x, 0, k=5, dreg=True).detach(), -iwae(m, x, 5, generator=0)["iwae"].detach()
    )


def test_bad_k():
    m = VAE(6, 2, hidden=(4,))
    with pytest.raises(ConfigError):
        iwae(m, _binary(), 0, generator=0)
