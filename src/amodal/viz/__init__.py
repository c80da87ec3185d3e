"""Pictures for people: mask overlays, panels, legends and uncertainty videos."""
