"""One builder per task or corpus; each `python -m recipes.tasks.<name>` writes data/<name>."""
