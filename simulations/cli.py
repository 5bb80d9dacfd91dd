def main() -> None:
    raise SystemExit("sfu-sim: not built yet")
