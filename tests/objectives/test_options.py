"""Typed training objectives: their losses are the objectives' with the settings they name."""

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.models.trainer import train
from elbolab.models.vae import VAE
from elbolab.objectives import ELBOObjective, IWAEObjective, elbo_loss, iwae_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model_and_data():
    x = (torch.rand(6, 5, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    return VAE(5, 2, hidden=(4,), generator=3, dtype=torch.float64), x


def test_elbo_objective_scales_its_beta_by_the_warmups():
    m, x = _model_and_data()
    objective = ELBOObjective(beta=4.0)
    assert torch.equal(objective.loss(m, x, 1), elbo_loss(m, x, 1, beta=4.0))
    assert torch.equal(objective.loss(m, x, 1, beta=0.25), elbo_loss(m, x, 1, beta=1.0))
    assert ELBOObjective() == ELBOObjective(beta=1.0)


@pytest.mark.parametrize("dreg", [True, False])
def test_iwae_objective_is_iwae_k(dreg):
    m, x = _model_and_data()
    loss = IWAEObjective(k=7, dreg=dreg).loss(m, x, 2)
    assert torch.equal(loss, iwae_loss(m, x, 2, k=7, dreg=dreg))


def test_only_the_elbo_objective_takes_the_kl_warmup():
    m, x = _model_and_data()
    train(m, ELBOObjective(beta=2.0).loss, x, generator=0, epochs=1, kl_warmup=1, progress=False)
    with pytest.raises(ConfigError, match="kl_warmup needs a loss_fn that accepts beta"):
        train(m, IWAEObjective(k=2).loss, x, generator=0, epochs=1, kl_warmup=1, progress=False)
