"""The jobs behind the CLI commands: read folders, call the library, write outputs.

Library packages never import from here; ``amodal.cli`` parses arguments and calls one function
of one module here.
"""
