"""Core: settings, files, value checks, library-noise filters. Imports nothing above it."""
