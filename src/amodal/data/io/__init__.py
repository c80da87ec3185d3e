"""Readers and writers at the boundary between files and the :class:`amodal.Clip` layout."""
