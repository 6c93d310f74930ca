from shelfwise.cli.main import main

main()
