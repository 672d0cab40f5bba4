"""Data and measures: data sets and loaders, response distance, sample-quality scores, proxy features."""
