from openfoundry.cli import main

main()
