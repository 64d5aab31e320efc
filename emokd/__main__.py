from emokd.cli import main

main()
