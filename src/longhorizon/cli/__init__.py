"""The `longhorizon` command line."""
