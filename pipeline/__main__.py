"""python -m pipeline: the same command line as ``newsbeam``."""

from pipeline.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
