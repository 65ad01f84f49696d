from devnix.cli import main

main()
