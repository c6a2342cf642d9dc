"""`python -m recipes.corpus`, kept for the commands people type: the builder is recipes/tasks/shakespeare.py."""

from recipes.tasks.shakespeare import main

if __name__ == "__main__":
    main()
