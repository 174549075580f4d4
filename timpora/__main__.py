"""`python -m timpora`: the same command line as `timpora`."""

from timpora.cli import app

app(prog_name="timpora")
