"""On ``PYTHONPATH`` only while a mutant that reaches child processes runs (``tests.mutants.plugin``):
installs that mutant in this process before any project module is imported (``tests.mutants.child``)."""

import os

if os.environ.get("MUTANTS_ACTIVE"):
    from tests.mutants.child import install

    install(os.environ["MUTANTS_ACTIVE"], os.environ.get("MUTANTS_CATALOGUE") or None)
