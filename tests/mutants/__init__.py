"""The mutation check: each mutant is one deliberate bug on the real code path, paired with the tests that
must catch it; ``python -m tests.mutants`` (``make mutants``) runs them and prints the table."""
