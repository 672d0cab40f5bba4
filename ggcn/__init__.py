"""ggcn: energy-based generative ConvNets as particle flows (Wu et al., GGCN).

The layers, each importing only those before it: ``config`` (profiles and named settings, the one scale
system); ``core`` (the Langevin sampler, particle initialisers, the KL and JKO rules, the learner of
Algorithm 1, the training loop, DDP); ``models`` (energies f_θ and generators g_α, the registry of
FRAME/GCN/wGCN, MGCN/wMGCN, GGCN ± LHS ± AMS, DCGAN, inpainting); ``measure`` (data, response distance,
quality scores, proxy features); ``experiments`` (the runs behind each chapter and the verdicts on the
paper's claims). ``book`` (recorded artifacts, the claims table, plot style) serves the chapters, and
``python -m ggcn`` reruns them.
"""
__version__ = "0.1.0"
