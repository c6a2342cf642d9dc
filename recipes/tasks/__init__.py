"""One builder per task or corpus. Each is `python -m recipes.tasks.<name> [--out_dir DIR]`, writes
data/<name> by default, prints what it wrote, and its `main(argv)` returns the counts; a problem
with its input is a UserError (one line, exit 2)."""
