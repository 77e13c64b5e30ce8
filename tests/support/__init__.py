"""What the tests share that is not a fixture: constants, helpers and test doubles. The fixtures stay in the
conftest.py files, thin wrappers over these."""
