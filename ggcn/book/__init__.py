"""What the chapters use: recorded artifacts with manifests, the claims table, one plot style."""
