"""VAE module: the encode/decode/prior protocol, priors, dtypes, explicit randomness."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from elbolab.distributions import DiagonalNormal, VampPriorDistribution, rsample
from elbolab.errors import ConfigError
from elbolab.models.vae import VAE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _binary(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < 0.3).to(torch.float32)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_protocol_shapes(likelihood, prior):
    m = VAE(12, 3, hidden=(16, 8), likelihood=likelihood, prior=prior, n_pseudo=5, generator=1)
    x = _binary(7, 12, 0)
    q = m.encode(x)
    assert isinstance(q, Independent) and isinstance(q.base_dist, Normal)
    assert q.batch_shape == (7,) and q.event_shape == (3,)
    z = rsample(q, 4, torch.Generator().manual_seed(0))
    assert z.shape == (4, 7, 3)
    px = m.decode(z)
    assert px.batch_shape == (4, 7) and px.event_shape == (12,)
    assert px.log_prob(x).shape == (4, 7)
    p = m.prior()
    assert p.log_prob(z).shape == (4, 7)
    s = p.sample((6,), generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 3)


def test_std_never_zero_or_infinite():
    m = VAE(5, 2, hidden=(4,), activation="relu", generator=3)
    with torch.no_grad():
        m.encoder[-1].bias[2:] = -1e4  # log-variance far below the clamp
        x = torch.ones(2, 5) * 1e3
        std = m.encode(x).base_dist.scale
        assert (std > 0).all() and torch.isfinite(std).all()
        m.encoder[-1].bias[2:] = 1e4
        std = m.encode(x).base_dist.scale
        assert torch.isfinite(std).all()


def test_vamp_prior_log_prob_is_mixture_of_encoder_posteriors():
    m = VAE(6, 2, hidden=(5,), prior="vamp", n_pseudo=4, generator=2, dtype=torch.float64)
    p = m.prior()
    assert isinstance(p, VampPriorDistribution)
    z = torch.randn(9, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    q_u = m.encode(m.pseudo_inputs)
    manual = torch.logsumexp(q_u.log_prob(z[:, None, :]), 1) - math.log(4)
    torch.testing.assert_close(p.log_prob(z), manual)
    # gradients reach the pseudo-inputs and the encoder through the prior
    p.log_prob(z).sum().backward()
    assert m.pseudo_inputs.grad is not None and m.pseudo_inputs.grad.abs().sum() > 0


def test_init_pseudo_inputs_from_data():
    m = VAE(6, 2, hidden=(5,), prior="vamp", n_pseudo=3, generator=2)
    x = torch.arange(60, dtype=torch.float32).reshape(10, 6)
    m.init_pseudo_inputs(x, generator=0)
    rows = {tuple(r.tolist()) for r in x}
    assert all(tuple(u.tolist()) in rows for u in m.pseudo_inputs)
    with pytest.raises(ConfigError):
        VAE(6, 2, hidden=(5,)).init_pseudo_inputs(x, 0)


def test_float64_and_double():
    x = _binary(3, 8, 1).double()
    m = VAE(8, 2, hidden=(4,), dtype=torch.float64)
    assert m.encode(x).base_dist.loc.dtype == torch.float64
    m2 = VAE(8, 2, hidden=(4,), likelihood="gaussian", prior="vamp", n_pseudo=3).double()
    q = m2.encode(x)
    assert q.base_dist.loc.dtype == torch.float64
    assert m2.prior().log_prob(q.base_dist.loc).dtype == torch.float64
    assert m2.decode(q.base_dist.loc).log_prob(x).dtype == torch.float64


def test_initialization_uses_only_the_given_generator():
    state = torch.get_rng_state()
    a = VAE(10, 3, hidden=(7,), prior="vamp", n_pseudo=4, generator=5)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG neither read nor moved
    b = VAE(
        10, 3, hidden=(7,), prior="vamp", n_pseudo=4, generator=torch.Generator().manual_seed(5)
    )
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na
    c = VAE(10, 3, hidden=(7,), prior="vamp", n_pseudo=4, generator=6)
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_sigma2_fixed_or_learned():
    fixed = VAE(4, 2, hidden=(), likelihood="gaussian", sigma2=0.25)
    assert "log_sigma2" not in dict(fixed.named_parameters())
    assert fixed.sigma2 == pytest.approx(0.25)
    px = fixed.decode(torch.zeros(1, 2))
    torch.testing.assert_close(px.base_dist.scale, torch.full((1, 4), 0.5))
    learned = VAE(4, 2, hidden=(), likelihood="gaussian", sigma2=0.25, learn_sigma2=True)
    assert "log_sigma2" in dict(learned.named_parameters())


def test_exact_log_marginal_against_quadrature():
    # d = 1, D = 2: p(x) = int N(x; w z + b, s2 I) N(z; 0, 1) dz on a fine grid.
    m = VAE(2, 1, hidden=(), likelihood="gaussian", sigma2=0.3, dtype=torch.float64, generator=4)
    x = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    z = torch.linspace(-12, 12, 24001, dtype=torch.float64)[:, None]
    log_joint = m.decode(z[:, None, :]).log_prob(x) + Normal(0.0, 1.0).log_prob(z)  # (G, 2)
    quad = torch.logsumexp(log_joint, 0) + math.log(float(z[1] - z[0]))
    torch.testing.assert_close(m.exact_log_marginal(x), quad, rtol=0, atol=1e-8)
    with pytest.raises(ConfigError):
        VAE(2, 1, hidden=(3,), likelihood="gaussian").exact_log_marginal(x)


def test_diagonal_normal_is_independent_normal():
    d = DiagonalNormal(torch.zeros(3, 2), torch.ones(3, 2))
    assert isinstance(d, Independent)
    assert d.expand((4, 3)).batch_shape == (4, 3)
    s1 = d.sample((5,), generator=torch.Generator().manual_seed(0))
    s2 = d.sample((5,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(s1, s2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data_dim": 0, "latent_dim": 2},
        {"data_dim": 4, "latent_dim": 2, "likelihood": "poisson"},
        {"data_dim": 4, "latent_dim": 2, "prior": "flow"},
        {"data_dim": 4, "latent_dim": 2, "activation": "sigmoid"},
        {"data_dim": 4, "latent_dim": 2, "sigma2": 0.0},
        {"data_dim": 4, "latent_dim": 2, "hidden": (0,)},
        {"data_dim": 4, "latent_dim": 2, "prior": "vamp", "n_pseudo": 0},
        {"data_dim": 4, "latent_dim": 2, "generator": 1.5},
    ],
)
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        VAE(**kwargs)
