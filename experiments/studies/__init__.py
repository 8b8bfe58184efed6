"""One-off studies: scripts that run an experiment and make a figure or a table of docs/results.

Each is `python -m experiments.studies.<name> --help`; no library module imports one (an
import contract). Which figure each makes is in experiments/studies/README.md.
"""
