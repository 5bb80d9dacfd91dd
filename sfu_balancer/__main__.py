from sfu_balancer.cli import main

main()
