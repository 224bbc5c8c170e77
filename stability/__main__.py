from stability.cli.app import main

main()
