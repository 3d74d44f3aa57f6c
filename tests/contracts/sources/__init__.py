"""Each registered source's part of the shared contract suite (tests/contracts/test_every_source.py): a module named
for the source (its source.yaml `name`) with a `Contract` class, the shape of tests/contracts/sources/base.py."""
