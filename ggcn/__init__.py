"""ggcn: energy-based generative ConvNets as particle flows (Wu et al., GGCN).

Modules: ``nets`` (energies), ``langevin`` (sampler, initialisers), ``flows`` (KL and JKO
learning rules), ``models`` (FRAME, wFRAME, GCN, wGCN), ``train`` (the training loop),
``data``, ``metrics``, ``particles`` (the 2-D world), ``viz``, ``config`` (profiles),
``book`` (artifacts and glue).
"""
__version__ = "0.1.0"
