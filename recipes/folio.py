"""`python -m recipes.folio`, kept for the commands people type: the builder is recipes/tasks/folio.py."""

from recipes.tasks.folio import main

if __name__ == "__main__":
    main()
