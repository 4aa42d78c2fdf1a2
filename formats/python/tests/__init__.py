"""Tests of the Python layer-file reader (see test_reader.py)."""
