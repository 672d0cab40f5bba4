"""Response distance (Xie et al. 2016; paper Sec. 5.1): D = Σ_k |mean_{x∈obs} F_k(x) − mean_{x∈syn} F_k(x)|,
F_k the spatially averaged response of filter k of a *fixed* bank (Gabor/DoG), so that models with different
learned filters are measured alike. Unlike the contrastive loss, which can sit near 0 while samples are poor,
it falls only as the particles' filter statistics approach the data's.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ggcn.models.nets import FilterBank, gabor_dog_bank

Responses = Callable[[Tensor], Tensor]


def fixed_responses(channels: int) -> Responses:
    """Spatially averaged rectified responses of the Gabor/DoG bank, ``(B, K·C)``."""
    bank = FilterBank(gabor_dog_bank(), channels)

    def responses(x: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.relu(bank.to(x.device)(x)).mean(dim=(2, 3))

    return responses


def response_distance(x_obs: Tensor, x_syn: Tensor, responses: Responses) -> float:
    """D = Σ_k |mean F_k(obs) − mean F_k(syn)| (0 when the filter statistics match)."""
    with torch.no_grad():
        return float((responses(x_obs).mean(0) - responses(x_syn).mean(0)).abs().sum())


def response_distance_callback(responses: Responses, every: int = 1):
    """A training callback logging ``response_distance`` of the model's current particles."""

    def callback(it: int, model, x_obs: Tensor) -> dict[str, float] | None:
        if it % every or model.particles is None:
            return None
        return {"response_distance": response_distance(x_obs, model.particles, responses)}

    return callback
