from latentatlas.cli import main

main()
