def main() -> None:
    raise SystemExit("sfu-balancer: not built yet")
