"""Helpers the tests share (systems under test, scripted providers, waits), imported like any module."""
