"""Publishing what is already trained: `python -m recipes.push` (publish.py) and the cards of
what it publishes (cards.py). Checkpoints pushed while training: recipes/runs/revisions.py."""
