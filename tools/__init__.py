"""One-off commands of the repository, each run from its root as ``python tools/<name>.py --flag=...``.

They use the library (``gen_jax``) and are not part of it: ``gen_jax/`` holds what a research
script imports, ``tools/`` what a person runs once in a while (weights conversion and export, the
README's results table, the paper-protocol Inception FID, k-NN on encoder features).
:mod:`tools.cli` is the flag and error plumbing they share with ``launch.py``.
"""
