"""Fine-tuning as a measurement: one run (training.py) and the pretrained-vs-random grid
(comparison.py)."""
