from geowarn.cli import main

main()
