"""`python -m recipes.evaluate`'s library: which models (targets.py), the text figures
(text.py), the table, results.json and the learning curve (report.py)."""
