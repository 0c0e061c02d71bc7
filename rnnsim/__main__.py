"""``python -m rnnsim`` runs the command line interface."""

from rnnsim.cli import main

if __name__ == "__main__":
    main()
