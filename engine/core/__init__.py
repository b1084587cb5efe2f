"""WHAT happens: commands are decided into events and events are folded into state.

Pure functions only: no clock reads, no database, no I/O. The runtime supplies "now".
"""
