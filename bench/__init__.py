"""The benchmark suite of ``make bench``; how to run it and read it: ``bench/__main__.py``."""
