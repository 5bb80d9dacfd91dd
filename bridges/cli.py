def main() -> None:
    raise SystemExit("sfu-bridge: not built yet")
