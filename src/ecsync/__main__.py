from ecsync.cli import main

main()
