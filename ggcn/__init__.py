"""ggcn: energy-based generative ConvNets as particle flows (Wu et al., GGCN).

The pieces: ``nets`` (energies f_θ), ``langevin`` (the sampler and particle initialisers),
``flows`` (the KL and JKO learning rules), ``train`` (the one training loop), ``config``
(profiles). The models, each a combination of those pieces: ``models`` (FRAME, wFRAME, GCN,
wGCN), ``multigrid`` (MGCN, wMGCN), ``cooperative`` and ``generators`` (GGCN ± LHS ± AMS,
conditional), ``dcgan`` (baseline), ``inpainting`` (masked-image GGCN). Data and measures:
``data``, ``metrics`` (response distance), ``evaluation`` (Inception FID/IS/KID, SSIM/PSNR),
``proxy`` (offline proxy feature nets), ``tasks`` (masks, completion, interpolation).
``rulers`` (per offline data family, a quality measure that checks its own ordering).
Experiments and the book: ``particles`` (the 2-D world), ``experiments``, ``ablation``,
``few_shot``, ``claims``, ``viz``, ``book`` (artifacts and glue), ``distributed`` (DDP).
"""
__version__ = "0.1.0"
