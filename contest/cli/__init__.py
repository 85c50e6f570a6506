"""The ``quiz`` command line and the demo it starts."""
