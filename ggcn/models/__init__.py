"""The models: energy networks f_θ, generators g_α, and the registry that builds each model by name."""
