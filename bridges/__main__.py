"""``python -m bridges`` is ``sfu-bridge``."""

from bridges.cli import main

main()
