"""``python -m rnnsim`` runs the command line interface."""

from rnnsim.cli import console_main

if __name__ == "__main__":
    console_main()
