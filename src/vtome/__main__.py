from vtome.cli import main

main()
