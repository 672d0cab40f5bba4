"""The runs behind each chapter (one runner, one sweep, one results type) and the verdicts on the claims."""
