"""What the tests share that is not a fixture: constants, helpers and test doubles (the fixtures live in conftest.py files)."""
