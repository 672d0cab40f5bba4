"""The engine: Langevin sampler, particle initialisers, learning rules, the learner, the training loop, DDP."""
