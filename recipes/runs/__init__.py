"""A run from start to finish: output folder and resume, precision, metrics, the end of
training, plots, the model card, the Hub."""
